"""/v1/jobs: job state, progress, timings, result; DELETE cancels."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from sqlalchemy.orm import Session

from app.bodies import StrictRoute
from app.dependencies import Ctx, Db, Paging
from app.errors import ApiError, found, problem_responses
from app.jobs.kinds import KINDS
from app.schemas import JobOut, Page, job_out
from app.store import jobs as job_store
from app.store.tables import JobRow

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictRoute)


def job_row(session: Session, job_id: str) -> JobRow:
    """The job, or a 404."""
    return found(session.get(JobRow, job_id), "job", job_id)


@router.get("", response_model=Page[JobOut], responses=problem_responses(422))
def list_jobs(
    session: Db, paging: Paging,
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
    kind: Literal[tuple(KINDS)] | None = None,  # type: ignore[valid-type]
) -> Page[JobOut]:
    """Jobs newest first, of one `state` and/or `kind` when given."""
    rows, total = job_store.page(session, paging.limit, paging.offset, state, kind)
    return Page(items=[job_out(r) for r in rows], total=total, limit=paging.limit, offset=paging.offset)


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
