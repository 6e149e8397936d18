"""Response schemas more than one router returns: a job, and a page of a list."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from app.store.tables import JobRow, utcnow

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first: its items, how many there are in all, and the window asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Progress(BaseModel):
    """Units done so far, of how many (profiling jobs count measurement units; other kinds report `message`)."""

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
