"""The job-runner interface; the service talks to jobs only through it.

A runner executes queued jobs (profiling, gains, validation) out of the request path. The job
table is the source of truth: the API inserts `queued` rows and sets
`cancelled`; runners claim, run, report progress and finish jobs through
`app.store.jobs`. `PEFT_PLANNER_JOBS` picks the implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from sqlalchemy import Engine

from app.settings import Settings


class JobRunner(ABC):
    """Runs jobs from the job table."""

    @abstractmethod
    def start(self) -> None:
        """Recover jobs a previous process left running, then begin taking jobs."""

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


def create_runner(settings: Settings, engine: Engine) -> JobRunner:
    """The runner named by `settings.jobs`."""
    if settings.jobs == "local":
        from app.jobs.local import LocalRunner

        return LocalRunner(settings, engine)
    from app.jobs.ray import RayRunner  # added with the Ray issue

    return RayRunner(settings, engine)
