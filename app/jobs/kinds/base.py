"""What a job kind is: how a worker runs it here (`run`, with a `Watch` on its job), and how the Ray runner's
driver feeds and stores its fan-out (`payload`, `store`); both give a `JobOutput`.

A kind's `run(engine, job, settings, watch) -> JobOutput` is run by `app.jobs.execute` (registered in
`app.jobs.kinds.KINDS`). It raises `profiler.Cancelled` to stop, `ValueError` (e.g. `ProfileError`) to fail
with its message; anything else fails the job with the exception's name. On Ray, the kind's tasks
(`app.jobs.ray_remote.REMOTE`) never touch the database: `payload` reads what they need, `store` writes what
they made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.settings import Settings
from app.store import jobs, profiles
from app.store.tables import JobRow
from profiler.errors import Cancelled
from profiler.schema import Profile

CHECK_EVERY_S = 0.5


@dataclass(frozen=True)
class JobOutput:
    """What a finished job reports: the profile it stored, and/or its result JSON."""

    profile_id: str | None = None
    result: dict[str, Any] | None = None


class Watch:
    """Progress, notes and cancellation for one running job, throttled to the database."""

    def __init__(self, engine: Engine, job: JobRow, worker: str, stop: Callable[[], bool]):
        self.engine, self.job_id, self.worker, self.stop = engine, job.id, worker, stop
        self.owned = True
        self._last = 0.0

    def progress(self, done: int, total: int) -> None:
        """Store `done` of `total` units (at most every CHECK_EVERY_S s, and at the end)."""
        now = time.monotonic()
        if done >= total or now - self._last >= CHECK_EVERY_S:
            self._last = now
            self.owned = jobs.report_progress(self.engine, self.job_id, self.worker, done, total)

    def should_cancel(self) -> bool:
        """Whether to stop: the worker is stopping, or the job was cancelled or taken over."""
        now = time.monotonic()
        if now - self._last >= CHECK_EVERY_S:
            self._last = now
            self.owned = jobs.still_owned(self.engine, self.job_id, self.worker)
        return self.stop() or not self.owned

    def note(self, message: str) -> None:
        """Store a progress message; raises Cancelled when the job should stop (a checkpoint)."""
        self.owned = jobs.report_message(self.engine, self.job_id, self.worker, message)
        if self.stop() or not self.owned:
            raise Cancelled(message)


@dataclass(frozen=True)
class Kind:
    """A job kind: its local run, and the driver's side of its Ray fan-out."""

    run: Callable[[Engine, JobRow, Settings, Watch], JobOutput]
    """Run the job in this process."""
    payload: Callable[[Engine, JobRow, Settings], dict[str, Any]]
    """What the kind's Ray `prepare` task gets, read from the database (and the models root) here."""
    store: Callable[[Engine, JobRow, dict[str, Any]], JobOutput]
    """Store what the kind's Ray fold returned; returns the job's output."""
    task_options: Callable[[JobRow], dict[str, Any]]
    """The options its Ray tasks' resources follow (`device`, `threads`)."""


def save_profile(engine: Engine, cache_key: str, profile: Profile) -> str:
    """Store a profile under `cache_key` (or find the one stored there already); returns its id."""
    with Session(engine, expire_on_commit=False) as session:
        row = profiles.save(session, cache_key, profile.model_dump_json(), profile.model.name,
                            profile.model.total_params, len(profile.candidates))
    return row.id
