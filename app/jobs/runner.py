"""The job-runner interface; the service talks to jobs only through it.

A runner executes queued jobs (profiling, gains, validation) out of the request path. The job
table is the source of truth: the API inserts `queued` rows and sets `cancelled`; runners claim,
run, report progress and finish jobs through `app.store.jobs`. `PEFT_PLANNER_JOBS` picks the
implementation (`app.jobs.create_runner`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from sqlalchemy import Engine

from app.settings import Settings
from app.store import jobs

log = logging.getLogger(__name__)


class JobRunner(ABC):
    """Runs jobs from the job table."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine

    def start(self) -> None:
        """Recover the jobs a previous process left running, then begin taking jobs."""
        n = jobs.release_running(self.engine, "the service restarted while the job was running",
                                 self.settings.job_max_attempts)
        if n:
            log.warning("recovered %d job(s) left running by a previous process", n)
        self.begin()

    def release(self, reason: str, worker: str) -> int:
        """Re-queue (or fail, out of attempts) the jobs `worker` was running; returns how many."""
        return jobs.release_running(self.engine, reason, self.settings.job_max_attempts, worker=worker)

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
