"""The job-runner interface; the service talks to jobs only through it.

A runner executes queued jobs (profiling, gains, validation) out of the request path. The job
table is the source of truth: the API inserts `queued` rows and sets `cancelled`; runners claim,
run, report progress and finish jobs through `app.store.jobs`. `PEFT_PLANNER_JOBS` picks the
implementation (`app.jobs.create_runner`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from sqlalchemy import Engine, Select

from app.settings import Settings
from app.store import instances, jobs

ORPHANED = "the service process running the job stopped, restarted or died"

log = logging.getLogger(__name__)


class JobRunner(ABC):
    """Runs jobs from the job table."""

    def __init__(self, settings: Settings, engine: Engine, instance: str | None = None):
        self.settings = settings
        self.engine = engine
        self.instance = instance or instances.new_instance_id()
        """The service instance the runner's claims belong to; its jobs count as orphaned while it is not live."""

    def start(self) -> None:
        """Recover the jobs of service processes that are gone, then begin taking jobs."""
        recover_jobs(self.engine, self.settings)
        self.begin()

    def release(self, reason: str, worker: str) -> int:
        """Re-queue (or fail, out of attempts) the jobs `worker` was running; returns how many."""
        return jobs.release_worker(self.engine, reason, self.settings.job_max_attempts, worker)

    @abstractmethod
    def begin(self) -> None:
        """Begin taking jobs (recovery has run)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop taking jobs and release the ones in progress."""

    @abstractmethod
    def submit(self, job_id: str) -> None:
        """A job was queued (runners that poll the table may ignore this)."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """A job was marked cancelled; stop its work as soon as possible."""

    @abstractmethod
    def healthy(self) -> bool:
        """Whether the runner can make progress on queued jobs."""


def recover_jobs(engine: Engine, settings: Settings) -> Select[tuple[str]]:
    """Re-queue (or fail) the running jobs of service instances that are not live; returns the live ones' subquery."""
    live = instances.live(settings.instance_lease_s, instances.gone_here(engine))
    n = jobs.release_orphans(engine, ORPHANED, settings.job_max_attempts, live)
    if n:
        log.warning("recovered %d job(s) left running by a service process that is gone", n)
    return live
