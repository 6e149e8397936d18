"""Running one job of any kind: its kind's runner, then the outcome recorded on the job."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable

from sqlalchemy import Engine

from app.jobs.kinds import KINDS
from app.jobs.kinds.base import Watch
from app.settings import Settings
from app.store import jobs
from app.store.tables import JobRow
from profiler.errors import Cancelled

log = logging.getLogger(__name__)


def public(message: str, settings: Settings) -> str:
    """An error message as a client may see it: paths under the models root made relative to it."""
    if settings.models_root is None:
        return message
    root = str(settings.models_root.resolve())
    return message.replace(root + os.sep, "").replace(root, ".")


def run_job(
    engine: Engine, job: JobRow, worker: str, settings: Settings, stop: Callable[[], bool]
) -> None:
    """Run the job and record its outcome, unless the job stopped being ours."""
    kind = KINDS.get(job.kind)
    if kind is None:
        jobs.finish(engine, job.id, worker, state="failed", error=f"unknown job kind {job.kind!r}")
        return
    try:
        output = kind.run(engine, job, settings, Watch(engine, job, worker, stop))
    except Cancelled:
        log.info("job %s stopped (cancelled, re-queued or shutting down)", job.id)
        return
    except ValueError as exc:  # ProfileError, DatasetError, pydantic's ValidationError: the message says why
        jobs.finish(engine, job.id, worker, state="failed", error=public(str(exc), settings))
        return
    except Exception as exc:  # noqa: BLE001 - any other error fails the job with its name
        log.error("job %s failed:\n%s", job.id, traceback.format_exc())
        jobs.finish(engine, job.id, worker, state="failed", error=public(f"{type(exc).__name__}: {exc}", settings))
        return
    jobs.finish(engine, job.id, worker, state="succeeded", profile_id=output.profile_id, result=output.result)
