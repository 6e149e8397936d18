"""The local runner: worker subprocesses that claim jobs from the job table."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from sqlalchemy import Engine

from app.jobs.runner import JobRunner
from app.settings import Settings

log = logging.getLogger(__name__)
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


class LocalRunner(JobRunner):
    """`settings.workers` processes running `python -m app.jobs.worker`, restarted if they die."""

    def __init__(self, settings: Settings, engine: Engine):
        super().__init__(settings, engine)
        self.db_url = engine.url.render_as_string(hide_password=False)
        self.procs: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    def begin(self) -> None:
        for _ in range(self.settings.workers):
            self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="job-monitor", daemon=True)
        self._monitor.start()

    def _spawn(self) -> None:
        worker = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        cmd = [
            sys.executable, "-m", "app.jobs.worker", "--db", self.db_url,
            "--worker-id", worker, "--parent-pid", str(os.getpid()),
            "--settings", self.settings.model_dump_json(exclude={"api_key"}),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, env.get("PYTHONPATH")]))
        self.procs[worker] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env)

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            for worker, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None or self._stop.is_set():
                    continue
                del self.procs[worker]
                self.release(f"the worker process exited with status {code}", worker)
                log.error("worker %s exited with status %s; starting another", worker, code)
                self._spawn()

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs.values():
            proc.terminate()
        for worker, proc in self.procs.items():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.release("the service stopped while the job was running", worker)
        self.procs.clear()
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    def submit(self, job_id: str) -> None:
        """Workers poll the table; nothing to do."""

    def cancel(self, job_id: str) -> None:
        """The worker sees the `cancelled` state at its next progress check."""

    def healthy(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs.values())
