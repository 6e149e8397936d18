"""Profiling jobs: measure every candidate of a model and store the profile."""

from __future__ import annotations

from sqlalchemy import Engine

from app.jobs.kinds.base import JobOutput, Watch, save_profile
from app.modelspec import resolve_model_path
from app.settings import Settings
from app.store.tables import JobRow
from profiler import profile_model
from profiler.schema import ModelSpec, ProfileOptions


def run_profile(engine: Engine, job: JobRow, settings: Settings, watch: Watch) -> JobOutput:
    """Profile the job's model; ProfileError, before any measurement, when it exceeds `settings.max_model_params`."""
    spec = ModelSpec.model_validate(job.spec)
    local = spec if spec.path is None else spec.model_copy(update={"path": str(resolve_model_path(spec.path, settings))})
    profile = profile_model(local, ProfileOptions.model_validate(job.options), progress=watch.progress,
                            should_cancel=watch.should_cancel, max_params=settings.max_model_params)
    profile = profile.model_copy(update={"spec": spec})
    return JobOutput(profile_id=save_profile(engine, job.cache_key, profile))
