"""Queueing jobs from the API: joining an equal active job, the queue limit, and the training task a
gains or validation job names (checked at request time)."""

from __future__ import annotations

import hashlib
import importlib.util
import json

from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.dependencies import Context
from app.errors import ApiError, found
from app.idempotency import Outcome
from app.jobs.specs import BUILTIN_TASKS, BuiltinTask, TaskSpec
from app.modelspec import model_dir
from app.schemas import job_out
from app.store import jobs as job_store
from app.store.tables import DatasetRow, JobRow
from profiler.training.datasets import SHAPE_NAMES, TaskKind


def accepted(job: JobRow, status: int = 202) -> Outcome:
    """The answer to a request that queued (or joined, or was answered by) `job`."""
    return Outcome(status, job_out(job), location=f"/v1/jobs/{job.id}")


def queue_job(ctx: Context, session: Session, kind: str, spec: dict, options: dict, cache_key: str) -> JobRow:
    """The queued or running job with this cache key, else a new queued job (429 when the queue is full)."""
    job = job_store.active_with_key(session, cache_key)
    if job is not None:
        return job
    queued = job_store.count_by_state(session)["queued"]
    if queued >= ctx.settings.max_queued_jobs:
        raise ApiError(429, f"{queued} jobs are queued (the limit); retry later", headers={"Retry-After": "30"})
    job = job_store.enqueue(session, spec, options, cache_key, kind)
    session.commit()
    if ctx.runner is not None:
        ctx.runner.submit(job.id)
    return job


def checked_task(task: TaskSpec, ctx: Context, session: Session, kind: TaskKind) -> TaskSpec:
    """The task, for a profile made for a `kind` task, with its model directory resolved: 404 for an unknown
    dataset, 403/422 for a refused directory, 422 for a built-in task or dataset of another kind."""
    if isinstance(task, BuiltinTask):
        builtin_kind, package, install = BUILTIN_TASKS[task.builtin]
        if builtin_kind != kind:
            raise ApiError(422, f"task.builtin {task.builtin!r} is a {builtin_kind} task; the profile was made for "
                           f"{kind}")
        if importlib.util.find_spec(package) is None:
            raise ApiError(422, f"task.builtin {task.builtin!r} needs `{install}` on the server")
        return task
    row = found(session.get(DatasetRow, task.dataset_id), "dataset", task.dataset_id)
    rows = row.summary.get("task", "classification")
    if rows != kind:
        shape = SHAPE_NAMES.get(row.summary.get("kind", "text"), "its")
        raise ApiError(422, f"task.dataset_id: dataset {task.dataset_id} holds {shape} rows, which "
                       f"train a {rows} model; the profile was made for {kind}")
    relative, _config = model_dir(task.model_path, ctx.settings, "task.model_path")
    return task.model_copy(update={"model_path": relative})


def queue_task_job(ctx: Context, session: Session, kind: str, spec: BaseModel) -> Outcome:
    """Queue a gains or validation job (an equal queued or running one is joined); 202 with the job."""
    spec_json = spec.model_dump(mode="json")
    key = hashlib.sha256(json.dumps({"kind": kind, "spec": spec_json}, sort_keys=True).encode()).hexdigest()
    return accepted(queue_job(ctx, session, kind, spec_json, {}, key))
