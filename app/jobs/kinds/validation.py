"""Validation jobs: fine-tune a plan's candidates for N steps over S seeds; realized vs predicted gain.

The result is the `profiler.training.validate.PlanValidation`: the plan's predicted gain (its total
`gain`, accuracy points when the gains were estimated in points), the realized gain over the
head-only baseline (mean and std over seeds), and every run. `validate_plan` has no
checkpoints: a cancelled validation job runs to its end and its result is dropped.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.jobs.kinds.base import JobOutput, Watch
from app.jobs.kinds.training import load_task
from app.jobs.specs import ValidationJob
from app.settings import Settings
from app.store.tables import JobRow, PlanRow
from profiler.errors import ProfileError
from profiler.training.validate import validate_plan


def run_validation(engine: Engine, job: JobRow, settings: Settings, watch: Watch) -> JobOutput:
    """Train the plan and the baseline on the job's task; the PlanValidation is the result."""
    spec = ValidationJob.model_validate(job.spec)
    with Session(engine) as session:
        row = session.get(PlanRow, spec.plan_id)
        if row is None:
            raise ProfileError(f"plan {spec.plan_id!r} no longer exists")
        selected, predicted = list(row.plan["selected"]), float(row.plan["gain"])
    watch.note("loading the task")
    task = load_task(engine, spec.task, settings)
    watch.note(f"training {len(selected)} candidate(s) and the head-only baseline: "
               f"{spec.seeds} seed(s) x {spec.train.steps} steps")
    report = validate_plan(task, selected, spec.train, spec.seeds, predicted_points=predicted)
    return JobOutput(result=report.model_dump(mode="json"))
