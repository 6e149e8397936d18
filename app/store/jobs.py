"""Job-table operations shared by the API process and the worker processes.

Every state change is a conditional UPDATE, so two processes never both
own a job: a worker claims a job only while it is `queued`, and writes
progress or a result only while the job is still `running` under its claim.
On PostgreSQL the claim also selects with `FOR UPDATE SKIP LOCKED`, so
workers of several service processes take different jobs instead of
contending for the oldest one.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Engine, Select, func, or_, select, update
from sqlalchemy.orm import Session

from app.store.paging import page_of
from app.store.tables import JobRow, ProfileRow, new_id, utcnow

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")


def enqueue(session: Session, spec: dict, options: dict, cache_key: str, kind: str = "profile") -> JobRow:
    """Add a queued job of `kind` (the caller commits)."""
    job = JobRow(id=new_id(), state="queued", kind=kind, spec=spec, options=options, cache_key=cache_key)
    session.add(job)
    return job


def add_cached(session: Session, spec: dict, options: dict, profile: ProfileRow) -> JobRow:
    """Record a job answered from the profile cache: already succeeded, nothing to run."""
    now = utcnow()
    job = JobRow(
        id=new_id(), state="succeeded", spec=spec, options=options,
        cache_key=profile.cache_key, cached=True, profile_id=profile.id,
        done=profile.num_candidates, total=profile.num_candidates,
        created_at=now, started_at=now, finished_at=now,
    )
    session.add(job)
    return job


def active_with_key(session: Session, cache_key: str) -> JobRow | None:
    """A queued or running job that will produce this cache key's profile."""
    stmt = (
        select(JobRow)
        .where(JobRow.cache_key == cache_key, JobRow.state.in_(ACTIVE))
        .order_by(JobRow.created_at)
        .limit(1)
    )
    return session.scalars(stmt).first()


def count_by_state(session: Session) -> dict[str, int]:
    """How many jobs are in each state (every state present, zeros included)."""
    rows = session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all()
    counts = dict.fromkeys(STATES, 0)
    counts.update({state: n for state, n in rows})
    return counts


def claim_next(engine: Engine, worker: str, instance: str | None = None) -> JobRow | None:
    """Claim the oldest queued job for `worker` of service `instance`, or return None when there is none."""
    with Session(engine, expire_on_commit=False) as session:
        for _ in range(5):
            job_id = session.scalars(
                select(JobRow.id).where(JobRow.state == "queued")
                .order_by(JobRow.created_at).limit(1).with_for_update(skip_locked=True)
            ).first()
            if job_id is None:
                session.rollback()
                return None
            claimed = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == "queued")
                .values(state="running", claimed_by=worker, instance=instance, attempts=JobRow.attempts + 1,
                        started_at=utcnow(), done=0, message=None)
            ).rowcount
            session.commit()
            if claimed == 1:
                return session.get(JobRow, job_id, populate_existing=True)
    return None


def _owned(job_id: str, worker: str):
    return (JobRow.id == job_id, JobRow.state == "running", JobRow.claimed_by == worker)


def _update_owned(engine: Engine, job_id: str, worker: str, **values: object) -> bool:
    """Set `values` on the job while it runs under this worker's claim; False when it does not."""
    with Session(engine) as session:
        n = session.execute(update(JobRow).where(*_owned(job_id, worker)).values(**values)).rowcount
        session.commit()
    return n == 1


def report_progress(engine: Engine, job_id: str, worker: str, done: int, total: int) -> bool:
    """Store progress; False when the job is no longer this worker's (cancelled, re-queued)."""
    return _update_owned(engine, job_id, worker, done=done, total=total)


def report_message(engine: Engine, job_id: str, worker: str, message: str) -> bool:
    """Store the latest progress note; False when the job is no longer this worker's."""
    return _update_owned(engine, job_id, worker, message=message)


def still_owned(engine: Engine, job_id: str, worker: str) -> bool:
    """Whether the job is still running under this worker's claim."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).where(*_owned(job_id, worker))) == 1


def finish(
    engine: Engine, job_id: str, worker: str, *, state: str,
    error: str | None = None, profile_id: str | None = None, result: dict | None = None,
) -> bool:
    """Move an owned running job to a final state; False if it was not ours any more."""
    return _update_owned(engine, job_id, worker, state=state, error=error, profile_id=profile_id,
                         result=result, finished_at=utcnow())


def cancel(session: Session, job: JobRow) -> bool:
    """Cancel a queued or running job; False when it had already finished."""
    n = session.execute(
        update(JobRow).where(JobRow.id == job.id, JobRow.state.in_(ACTIVE))
        .values(state="cancelled", finished_at=utcnow(), error="cancelled by request")
    ).rowcount
    session.commit()
    return n == 1


def _release(engine: Engine, reason: str, max_attempts: int, *owner: ColumnElement[bool]) -> int:
    """Re-queue the running jobs matching `owner`, or fail those out of attempts; returns how many."""
    with Session(engine) as session:
        failed = session.execute(
            update(JobRow)
            .where(JobRow.state == "running", JobRow.attempts >= max_attempts, *owner)
            .values(state="failed", finished_at=utcnow(), claimed_by=None,
                    error=f"{reason}; gave up after {max_attempts} attempt(s)")
        ).rowcount
        requeued = session.execute(
            update(JobRow)
            .where(JobRow.state == "running", *owner)
            .values(state="queued", claimed_by=None, instance=None, started_at=None, done=0,
                    error=f"{reason}; re-queued")
        ).rowcount
        session.commit()
    return failed + requeued


def release_worker(engine: Engine, reason: str, max_attempts: int, worker: str) -> int:
    """Re-queue (or fail, out of attempts) the jobs `worker` was running: its process died or stopped."""
    return _release(engine, reason, max_attempts, JobRow.claimed_by == worker)


def release_orphans(engine: Engine, reason: str, max_attempts: int, live: Select[tuple[str]]) -> int:
    """Re-queue (or fail) running jobs whose service instance is not `live` (an id subquery; dead, or none recorded).

    Called at start-up and by every instance's heartbeat, so a job of a replica that died is
    taken up by another. Returns how many jobs were touched.
    """
    return _release(engine, reason, max_attempts,
                    or_(JobRow.instance.is_(None), JobRow.instance.not_in(live)))


def page(session: Session, limit: int, offset: int, state: str | None = None,
         kind: str | None = None) -> tuple[list[JobRow], int]:
    """Jobs newest first (of one state and/or kind, if given), and how many match in all."""
    where = [c for c in (JobRow.state == state if state else None, JobRow.kind == kind if kind else None)
             if c is not None]
    return page_of(session, JobRow, limit, offset, *where)
