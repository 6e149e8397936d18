"""Real HTTP servers for tests: a free loopback port, and a `peft-planner serve` process up and answering."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
"""The repository root."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Return once `url`/healthz answers 200; AssertionError if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, f"the server exited with status {proc.returncode}"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def serve_command(port: int, db: str, *extra: str) -> list[str]:
    """`python -m app.cli serve` on 127.0.0.1:`port` with database `db` (as `make run` starts it)."""
    return [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--db", db, "--log-level", "warning", *extra]


def start(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
          timeout_s: float = 60.0, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start a server command in a new process session (its workers with it); the process and its URL.

    With `log`, the output of the server and its workers goes to that file.
    """
    port = command[command.index("--port") + 1]
    env = env if env is not None else {**os.environ,
                                       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    output = None if log is None else log.open("ab")
    proc = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True, stdout=output, stderr=output)
    if output is not None:
        output.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout_s)
    except AssertionError:
        kill(proc)
        raise
    return proc, url


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the server and its worker processes (they share its session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Stop the server gracefully (SIGTERM), killing it if it does not exit in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill(proc)


@contextmanager
def serving(db: str, cwd: Path | None = None, *extra: str) -> Iterator[str]:
    """A `peft-planner serve` on a fresh port for the block; yields its URL, stops it after."""
    proc, url = start(serve_command(free_port(), db, *extra), cwd=cwd)
    try:
        yield url
    finally:
        stop(proc)
