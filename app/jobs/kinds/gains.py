"""Gains jobs: fill a stored profile's gains (any registered source) into a new profile.

The new profile has the same candidates and costs, each with `gain`, `gain_source` and
`gain_details`; a `gradient` job's result is the `GainReport` (calibration, probes, rankings); a
`probe` job's details per candidate hold its run (seed, steps, both accuracies).
The new profile's cache key derives from the job id, so a job re-run after a crash finds the
profile it stored before instead of storing a second one. On Ray each probe is one task
(`profiler.gains.registry.gains_fanout`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.jobs.kinds.base import JobOutput, Kind, Watch, save_profile
from app.jobs.kinds.training import load_task, task_source, train_device
from app.jobs.specs import GainsJob
from app.settings import Settings
from app.store.tables import JobRow, ProfileRow
from profiler.errors import ProfileError
from profiler.gains.registry import SOURCES, fill_gains
from profiler.schema import Profile


def _source_profile(engine: Engine, profile_id: str) -> str:
    """The stored profile's JSON; ProfileError when it is gone."""
    with Session(engine) as session:
        row = session.get(ProfileRow, profile_id)
        if row is None:
            raise ProfileError(f"profile {profile_id!r} no longer exists")
        return row.body


def _key(job: JobRow) -> str:
    return hashlib.sha256(f"gains:{job.id}".encode()).hexdigest()


def run_gains(engine: Engine, job: JobRow, settings: Settings, watch: Watch) -> JobOutput:
    """Estimate the gains the job asks for and store the profile carrying them."""
    spec = GainsJob.model_validate(job.spec)
    profile = Profile.model_validate_json(_source_profile(engine, spec.profile_id))
    task = None
    if SOURCES[spec.source].needs_task or spec.probes:
        assert spec.task is not None  # GainsRequest requires it for sources that train
        watch.note("loading the task")
        task = load_task(engine, spec.task, settings, profile.task_kind)
    gained, report = fill_gains(profile, spec.source, task, spec.train, spec.workers, progress=watch.note,
                                probes=spec.probes)
    result = None if report is None else report.model_dump(mode="json")
    return JobOutput(profile_id=save_profile(engine, _key(job), gained), result=result)


def _payload(engine: Engine, job: JobRow, settings: Settings) -> dict[str, Any]:
    spec = GainsJob.model_validate(job.spec)
    body = _source_profile(engine, spec.profile_id)
    kind = Profile.model_validate_json(body).task_kind
    task = None if spec.task is None else task_source(engine, spec.task, settings, kind)
    return {"profile": body, "source": spec.source, "task": task, "probes": spec.probes,
            "train": None if spec.train is None else spec.train.model_dump(mode="json")}


def _store(engine: Engine, job: JobRow, output: dict[str, Any]) -> JobOutput:
    profile = Profile.model_validate_json(output["profile"])
    return JobOutput(profile_id=save_profile(engine, _key(job), profile), result=output["result"])


GAINS = Kind(run_gains, _payload, _store, lambda job: train_device(GainsJob.model_validate(job.spec).train))
