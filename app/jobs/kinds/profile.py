"""Profiling jobs: measure every candidate of a model and store the profile (on Ray: one task per measurement)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.jobs.kinds.base import JobOutput, Kind, Watch, save_profile
from app.modelspec import resolve_model_path
from app.settings import Settings
from app.store import profiles
from app.store.tables import JobRow
from profiler import profile_model
from profiler.schema import ModelSpec, ProfileOptions


def _local(spec: ModelSpec, settings: Settings) -> ModelSpec:
    """The spec with its directory resolved under the models root (the same path on every node)."""
    return spec if spec.path is None else spec.model_copy(update={"path": str(resolve_model_path(spec.path, settings))})


def run_profile(engine: Engine, job: JobRow, settings: Settings, watch: Watch) -> JobOutput:
    """Profile the job's model; ProfileError, before any measurement, when it exceeds `settings.max_model_params`."""
    spec = ModelSpec.model_validate(job.spec)
    local = _local(spec, settings)
    profile = profile_model(local, ProfileOptions.model_validate(job.options), progress=watch.progress,
                            should_cancel=watch.should_cancel, max_params=settings.max_model_params)
    profile = profile.model_copy(update={"spec": spec})
    return JobOutput(profile_id=save_profile(engine, job.cache_key, profile))


def _payload(_engine: Engine, job: JobRow, settings: Settings) -> dict[str, Any]:
    """What to build (a directory as this node's absolute path), what the profile records, how, and the size limit."""
    spec = ModelSpec.model_validate(job.spec)
    return {"spec": _local(spec, settings).model_dump(mode="json"), "stored_spec": job.spec, "options": job.options,
            "max_params": settings.max_model_params}


def _store(engine: Engine, job: JobRow, output: dict[str, Any]) -> JobOutput:
    with Session(engine, expire_on_commit=False) as session:
        row = profiles.save(session, job.cache_key, output["body"], output["model"], output["total_params"],
                            output["num_candidates"])
    return JobOutput(profile_id=row.id)


PROFILE = Kind(run_profile, _payload, _store, lambda job: job.options)
