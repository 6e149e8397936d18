"""Running one profiling job: profile the model, store the profile, finish the job."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.settings import Settings
from app.store import jobs, profiles
from app.store.tables import JobRow

log = logging.getLogger(__name__)
CHECK_EVERY_S = 0.5


class _Watch:
    """Progress and cancellation callbacks for the profiler, throttled to the database."""

    def __init__(self, engine: Engine, job: JobRow, worker: str, stop: Callable[[], bool]):
        self.engine, self.job_id, self.worker, self.stop = engine, job.id, worker, stop
        self.owned = True
        self._last = 0.0

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last >= CHECK_EVERY_S:
            self._last = now
            self.owned = jobs.report_progress(self.engine, self.job_id, self.worker, done, total)

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if now - self._last >= CHECK_EVERY_S:
            self._last = now
            self.owned = jobs.still_owned(self.engine, self.job_id, self.worker)
        return self.stop() or not self.owned


def run_job(
    engine: Engine, job: JobRow, worker: str, settings: Settings, stop: Callable[[], bool]
) -> None:
    """Profile the job's model and record the outcome, unless the job stopped being ours."""
    from profiler.schema import ModelSpec, ProfileOptions

    from profiler import Cancelled, ProfileError, profile_model

    watch = _Watch(engine, job, worker, stop)
    try:
        profile = profile_model(
            ModelSpec.model_validate(job.spec), ProfileOptions.model_validate(job.options),
            progress=watch.progress, should_cancel=watch.should_cancel,
        )
    except Cancelled:
        log.info("job %s stopped (cancelled, re-queued or shutting down)", job.id)
        return
    except (ProfileError, ValueError) as exc:
        jobs.finish(engine, job.id, worker, state="failed", error=str(exc))
        return
    except Exception as exc:
        log.error("job %s failed:\n%s", job.id, traceback.format_exc())
        jobs.finish(engine, job.id, worker, state="failed", error=f"{type(exc).__name__}: {exc}")
        return
    if profile.model.total_params > settings.max_model_params:
        error = (f"the model has {profile.model.total_params} parameters; "
                 f"the limit is {settings.max_model_params}")
        jobs.finish(engine, job.id, worker, state="failed", error=error)
        return
    with Session(engine, expire_on_commit=False) as session:
        row = profiles.save(
            session, job.cache_key, profile.model_dump_json(), profile.model.name,
            profile.model.total_params, len(profile.candidates),
        )
    jobs.finish(engine, job.id, worker, state="succeeded", profile_id=row.id)
