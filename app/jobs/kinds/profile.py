"""Profiling jobs: measure every candidate of a model and store the profile."""

from __future__ import annotations

from sqlalchemy import Engine

from app.jobs.kinds.base import JobOutput, Watch, save_profile
from app.settings import Settings
from app.store.tables import JobRow
from profiler import ProfileError, profile_model
from profiler.schema import ModelSpec, ProfileOptions


def run_profile(engine: Engine, job: JobRow, settings: Settings, watch: Watch) -> JobOutput:
    """Profile the job's model; ProfileError when it exceeds `settings.max_model_params`."""
    profile = profile_model(
        ModelSpec.model_validate(job.spec), ProfileOptions.model_validate(job.options),
        progress=watch.progress, should_cancel=watch.should_cancel,
    )
    if profile.model.total_params > settings.max_model_params:
        raise ProfileError(f"the model has {profile.model.total_params} parameters; "
                           f"the limit is {settings.max_model_params}")
    return JobOutput(profile_id=save_profile(engine, job.cache_key, profile))
