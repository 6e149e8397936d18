"""Helpers for the Ray runner tests: tiny jobs, the job table, and the worker processes running a job's tasks."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.store import jobs
from app.store.tables import JobRow
from tests.tiny import SLOW_BERT, TINY_BERT  # noqa: F401  (re-exported to the Ray tests)

OPTIONS = {"methods": ["lora", "bitfit"], "ranks": [4], "batch_size": 1, "seq_len": 8,
           "device": "cpu", "repeats": 1, "warmup": 0, "threads": 1}
# A slower job: with 1000 timed repeats its one layer measurement (the last task) runs for seconds.
SLOW_OPTIONS = {**OPTIONS, "batch_size": 2, "seq_len": 16, "repeats": 1000}


def enqueue(engine: Engine, spec: dict, options: dict, key: str) -> str:
    """Queue a job as the API does; returns its id."""
    with Session(engine) as session:
        job = jobs.enqueue(session, spec, options, key)
        session.commit()
        return job.id


def job_row(engine: Engine, job_id: str) -> JobRow:
    """The job's current row."""
    with Session(engine) as session:
        return session.get(JobRow, job_id)


def wait_job(engine: Engine, job_id: str, done: Callable[[JobRow], bool], timeout: float) -> JobRow:
    """Poll the job until `done(row)`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = job_row(engine, job_id)
        if done(row):
            return row
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} timed out in state {row.state} ({row.done}/{row.total}): {row.error}")


def task_pids(job_id: str) -> dict[int, str]:
    """Worker processes now running one of the job's tasks, by pid (Ray titles them `ray::<task name>`)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode().strip()
        except OSError:
            continue
        if title.startswith("ray::peft-planner:") and f":{job_id}:" in title:
            found[int(entry.name)] = title
    return found


def last_task(engine: Engine, job_id: str, timeout: float) -> str:
    """The name of the job's last measurement unit (its layer measurement), once the job knows its tasks."""
    row = wait_job(engine, job_id, lambda r: r.total is not None or r.state not in ("queued", "running"), timeout)
    assert row.total, f"the job has no tasks: {row.state} {row.error}"
    return f"peft-planner:measure:{job_id}:{row.total - 1}"


def wait_task(job_id: str, name: str, timeout: float, besides: int | None = None) -> int:
    """The pid of the worker process running task `name` (other than `besides`), as soon as one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, title in task_pids(job_id).items():
            if title == f"ray::{name}" and pid != besides:
                return pid
        time.sleep(0.02)
    raise AssertionError(f"task {name} never ran")


def cancel_and_wait(engine: Engine, runner, job_id: str, timeout: float = 20) -> None:
    """Cancel the job as DELETE /v1/jobs/{id} does, and wait until none of its tasks runs any more."""
    with Session(engine) as session:
        assert jobs.cancel(session, session.get(JobRow, job_id))
    runner.cancel(job_id)
    deadline = time.monotonic() + timeout
    while task_pids(job_id):
        assert time.monotonic() < deadline, f"tasks still running: {task_pids(job_id)}"
        time.sleep(0.1)


def kill_task(job_id: str, name: str, timeout: float) -> int:
    """SIGKILL the worker process running task `name` as soon as it starts; returns its pid."""
    pid = wait_task(job_id, name, timeout)
    os.kill(pid, signal.SIGKILL)
    return pid
