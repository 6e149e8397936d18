"""This service process as one instance (replica) on the database: its heartbeat and the recovery sweep.

Every instance beats every third of `settings.instance_lease_s` and, on each beat, recovers what
instances that are no longer live left behind: their running jobs are re-queued (or failed, out of
attempts) and their unanswered Idempotency-Keys released. A replica killed mid-job is thus taken
over by any other replica on the same database, and by itself when it restarts.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from app.idempotency import release_pending
from app.jobs.runner import recover_jobs
from app.settings import Settings
from app.store import instances

log = logging.getLogger(__name__)


def recover(engine: Engine, settings: Settings) -> None:
    """Recover the jobs and Idempotency-Keys of instances that are not live, and forget those instances."""
    live = recover_jobs(engine, settings)
    released = release_pending(engine, live)
    if released:
        log.warning("released %d Idempotency-Key(s) of requests a service process that is gone left unanswered",
                    released)
    instances.forget_dead(engine, live)


class Instance:
    """This process's instance row, kept alive by a heartbeat thread between `start` and `stop`."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings, self.engine = settings, engine
        self.id = instances.new_instance_id()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        instances.register(engine, self.id)

    def start(self) -> None:
        """Begin beating (and sweeping) in a background thread."""
        self._thread = threading.Thread(target=self._beat, name="instance-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.instance_lease_s / 3):
            try:
                instances.beat(self.engine, self.id)
                recover(self.engine, self.settings)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the heartbeat
                log.exception("heartbeat of instance %s failed", self.id)

    def stop(self) -> None:
        """Stop beating and remove the instance's row."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        instances.retire(self.engine, self.id)
