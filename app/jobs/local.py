"""The local runner: worker subprocesses that claim jobs from the job table.

Each worker writes the job it is running to its own small state file. Once a second the monitor
reads them and ends a worker (SIGKILL, then a fresh worker is started) whose job was cancelled more
than `settings.cancel_grace_s` ago, or has run longer than `settings.job_max_s` (the job fails with
that reason): a job stops using the CPU even when it is inside a step that has no cancellation
checkpoint (one long measurement, a validation run).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.jobs.runner import JobRunner
from app.settings import Settings
from app.store import jobs
from app.store.tables import JobRow

log = logging.getLogger(__name__)
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class Worker:
    """A worker process and the file where it says which job it runs."""

    proc: subprocess.Popen
    state_file: Path

    def current(self) -> tuple[str, float] | None:
        """(job id, wall-clock start time) of the job the worker runs, or None when it is idle."""
        try:
            state = json.loads(self.state_file.read_text() or "{}")
        except (OSError, ValueError):
            return None
        return (state["job"], float(state["since"])) if state.get("job") else None


class LocalRunner(JobRunner):
    """`settings.workers` processes running `python -m app.jobs.worker`, restarted if they die."""

    def __init__(self, settings: Settings, engine: Engine, instance: str | None = None):
        super().__init__(settings, engine, instance)
        self.db_url = engine.url.render_as_string(hide_password=False)
        self.procs: dict[str, Worker] = {}
        self._states = Path(tempfile.mkdtemp(prefix="peft-planner-workers-"))
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    def begin(self) -> None:
        for _ in range(self.settings.workers):
            self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="job-monitor", daemon=True)
        self._monitor.start()

    def _spawn(self) -> None:
        worker = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        state_file = self._states / f"{worker.rsplit(':', 1)[-1]}.json"
        state_file.write_text("{}")
        cmd = [
            sys.executable, "-m", "app.jobs.worker", "--db", self.db_url,
            "--worker-id", worker, "--instance", self.instance, "--parent-pid", str(os.getpid()), "--state-file", str(state_file),
            "--settings", self.settings.model_dump_json(exclude={"api_key"}),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, env.get("PYTHONPATH")]))
        self.procs[worker] = Worker(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env), state_file)

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            self._enforce_limits()
            for worker, handle in list(self.procs.items()):
                code = handle.proc.poll()
                if code is None or self._stop.is_set():
                    continue
                del self.procs[worker]
                self.release(f"the worker process exited with status {code}", worker)
                log.error("worker %s exited with status %s; starting another", worker, code)
                self._spawn()

    def _enforce_limits(self) -> None:
        """Kill workers whose job was cancelled a while ago or ran past the time limit (failing it)."""
        running = {w: cur for w, handle in self.procs.items() if (cur := handle.current()) is not None}
        if not running:
            return
        with Session(self.engine) as session:
            rows = session.execute(select(JobRow.id, JobRow.state, JobRow.finished_at)
                                   .where(JobRow.id.in_([job for job, _ in running.values()]))).all()
        by_id = {row.id: row for row in rows}
        now = time.time()
        for worker, (job_id, since) in running.items():
            row = by_id.get(job_id)
            if row is None:
                continue
            if row.state == "cancelled" and row.finished_at is not None \
                    and now - row.finished_at.timestamp() > self.settings.cancel_grace_s:
                log.warning("job %s was cancelled but its worker is still busy; ending the worker", job_id)
                self._kill(worker)
            elif row.state == "running" and now - since > self.settings.job_max_s:
                jobs.finish(self.engine, job_id, worker, state="failed",
                            error=f"ran past the time limit of {self.settings.job_max_s:g} s (PEFT_PLANNER_JOB_MAX_S)")
                self._kill(worker)

    def _kill(self, worker: str) -> None:
        """End a worker now; the monitor sees it exit and starts another."""
        handle = self.procs[worker]
        handle.proc.kill()
        handle.state_file.write_text("{}")

    def stop(self) -> None:
        self._stop.set()
        for handle in self.procs.values():
            handle.proc.terminate()
        for worker, handle in self.procs.items():
            try:
                handle.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                handle.proc.kill()
                handle.proc.wait()
            self.release("the service stopped while the job was running", worker)
        self.procs.clear()
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    def submit(self, job_id: str) -> None:
        """Workers poll the table; nothing to do."""

    def cancel(self, job_id: str) -> None:
        """The worker sees the `cancelled` state at its next progress check, or the monitor ends it."""

    def healthy(self) -> bool:
        return bool(self.procs) and all(h.proc.poll() is None for h in self.procs.values())
