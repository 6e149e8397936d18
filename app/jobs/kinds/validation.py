"""Validation jobs: fine-tune a plan's candidates for N steps over S seeds; realized vs predicted gain.

The result is the `profiler.training.validate.PlanValidation`: the plan's predicted gain (its total
`gain`, accuracy points when the gains were estimated in points), the realized gain over the
head-only baseline (mean and std over seeds), and every run. `validate_plan` has no
checkpoints: a cancelled validation job runs to its end and its result is dropped. On Ray each run (the
plan, and the head-only baseline, per seed) is one task (`profiler.training.validate.validation_fanout`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.jobs.kinds.base import JobOutput, Kind, Watch
from app.jobs.kinds.training import load_task, task_source, train_device
from app.jobs.specs import ValidationJob
from app.settings import Settings
from app.store.tables import JobRow, PlanRow, ProfileRow
from profiler.errors import ProfileError
from profiler.schema import Profile
from profiler.training.datasets import TaskKind
from profiler.training.validate import validate_plan


def _plan(engine: Engine, plan_id: str) -> tuple[list[str], float, TaskKind | None]:
    """The stored plan's selected candidates, predicted gain and the task kind of its profile (None for a plan of
    an inline problem); ProfileError when it is gone."""
    with Session(engine) as session:
        row = session.get(PlanRow, plan_id)
        if row is None:
            raise ProfileError(f"plan {plan_id!r} no longer exists")
        profile = None if row.profile_id is None else session.get(ProfileRow, row.profile_id)
        kind = None if profile is None else Profile.model_validate_json(profile.body).task_kind
        return list(row.plan["selected"]), float(row.plan["gain"]), kind


def run_validation(engine: Engine, job: JobRow, settings: Settings, watch: Watch) -> JobOutput:
    """Train the plan and the baseline on the job's task; the PlanValidation is the result."""
    spec = ValidationJob.model_validate(job.spec)
    selected, predicted, kind = _plan(engine, spec.plan_id)
    watch.note("loading the task")
    task = load_task(engine, spec.task, settings, kind)
    watch.note(f"training {len(selected)} candidate(s) and the head-only baseline: "
               f"{spec.seeds} seed(s) x {spec.train.steps} steps")
    report = validate_plan(task, selected, spec.train, spec.seeds, predicted_points=predicted)
    return JobOutput(result=report.model_dump(mode="json"))


def _payload(engine: Engine, job: JobRow, settings: Settings) -> dict[str, Any]:
    spec = ValidationJob.model_validate(job.spec)
    selected, predicted, kind = _plan(engine, spec.plan_id)
    return {"selected": selected, "predicted": predicted, "train": spec.train.model_dump(mode="json"),
            "seeds": spec.seeds, "task": task_source(engine, spec.task, settings, kind)}


def _store(_engine: Engine, _job: JobRow, output: dict[str, Any]) -> JobOutput:
    return JobOutput(result=output["result"])


VALIDATION = Kind(run_validation, _payload, _store,
                  lambda job: train_device(ValidationJob.model_validate(job.spec).train))
