"""/v1/jobs: job state, progress, timings, result; DELETE cancels. Also how the API queues jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.context import Context, Ctx, Db
from app.errors import ApiError, found, problem_responses
from app.store import jobs as job_store
from app.store.tables import JobRow, utcnow

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class Progress(BaseModel):
    """Candidates measured so far, of how many (profiling jobs; other kinds report `message`)."""

    done: int
    total: int | None


class Timings(BaseModel):
    """When the job was created, started and finished, and the seconds spent."""

    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queued_s: float | None = Field(description="Seconds from creation to start (or now).")
    running_s: float | None = Field(description="Seconds from start to finish (or now).")


class JobOut(BaseModel):
    """A job: profiling (`profile`), gain estimation (`gains`) or plan validation (`validation`)."""

    id: str
    kind: Literal["profile", "gains", "validation"]
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    cached: bool = Field(description="Answered from a stored profile without running.")
    attempts: int
    progress: Progress
    timings: Timings
    error: str | None
    message: str | None = Field(description="The latest progress note (gains and validation jobs).")
    model: dict[str, Any] | None = Field(description="The model profiled (profiling jobs).")
    options: dict[str, Any] | None = Field(description="How it is profiled (profiling jobs).")
    request: dict[str, Any] | None = Field(
        description="What a gains job (with `profile_id`) or validation job (with `plan_id`) was asked."
    )
    profile_id: str | None = Field(description="The profile the job stored (profiling and gains jobs).")
    profile_url: str | None
    result: dict[str, Any] | None = Field(
        description="A finished gradient gains job's GainReport, or a validation job's PlanValidation."
    )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return round(((end or utcnow()) - start).total_seconds(), 3)


def job_out(job: JobRow) -> JobOut:
    """A job as its API representation."""
    profiling = job.kind == "profile"
    return JobOut.model_validate({
        "id": job.id, "kind": job.kind, "state": job.state, "cached": job.cached, "attempts": job.attempts,
        "progress": {"done": job.done, "total": job.total},
        "timings": {
            "created_at": job.created_at, "started_at": job.started_at,
            "finished_at": job.finished_at,
            "queued_s": _seconds(job.created_at, job.started_at),
            "running_s": _seconds(job.started_at, job.finished_at),
        },
        "error": job.error, "message": job.message,
        "model": job.spec if profiling else None, "options": job.options if profiling else None,
        "request": None if profiling else job.spec,
        "profile_id": job.profile_id,
        "profile_url": f"/v1/profiles/{job.profile_id}" if job.profile_id else None,
        "result": job.result,
    })


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


def job_row(session: Session, job_id: str) -> JobRow:
    """The job, or a 404."""
    return found(session.get(JobRow, job_id), "job", job_id)


@router.get("/{job_id}", response_model=JobOut, responses=problem_responses(404))
def get_job(job_id: str, session: Db) -> JobOut:
    """A job's state, progress, timings and error."""
    return job_out(job_row(session, job_id))


@router.delete(
    "/{job_id}", response_model=JobOut, responses=problem_responses(404, 409),
    summary="Cancel a queued or running job",
)
def cancel_job(
    job_id: str, ctx: Ctx,
    session: Db,
) -> JobOut:
    """Cancel the job; 409 if it already finished (cancelling twice is fine)."""
    job = job_row(session, job_id)
    if job.state != "cancelled":
        if not job_store.cancel(session, job):
            session.refresh(job)
            raise ApiError(409, f"job {job_id} already {job.state}; nothing to cancel")
        if ctx.runner is not None:
            ctx.runner.cancel(job_id)
    session.refresh(job)
    return job_out(job)
