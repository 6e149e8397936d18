"""A real `peft-planner serve` process, killed with SIGKILL and restarted on its database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = {
    "candidates": [
        {"id": "a", "method": "lora", "gain": 3.0, "params": 10, "flops": 5.0},
        {"id": "b", "method": "bitfit", "gain": 1.0, "params": 5, "flops": 1.0},
    ],
    "budget": {"params": 12, "flops": 10},
}
SLOW_JOB = {
    "model": {"config": {"model_type": "bert", "hidden_size": 128, "num_hidden_layers": 6,
                         "num_attention_heads": 2, "intermediate_size": 512, "vocab_size": 128}},
    "options": {"methods": ["lora", "bitfit"], "ranks": [2, 4, 8, 16], "batch_size": 1,
                "seq_len": 8, "device": "cpu", "repeats": 3},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db: Path, port: int) -> subprocess.Popen:
    """Start `peft-planner serve` and wait until /healthz answers."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--db", str(db),
         "--log-level", "warning"],
        env=env, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the server and its worker processes (they share its session)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_plans_and_jobs_survive_kill_9(tmp_path: Path) -> None:
    db, port = tmp_path / "service.db", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = serve(db, port)
    try:
        plan = httpx.post(f"{url}/v1/plans", json={"problem": PROBLEM}).json()
        job = httpx.post(f"{url}/v1/profiles", json=SLOW_JOB).json()
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/v1/jobs/{job['id']}").json()["state"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        kill_group(proc)
    proc = serve(db, port)
    try:
        assert httpx.get(f"{url}/v1/plans/{plan['id']}").json() == plan
        after = httpx.get(f"{url}/v1/jobs/{job['id']}").json()
        assert after["attempts"] >= 1
        if after["state"] != "succeeded":
            assert "restarted" in after["error"], after
            assert after["state"] in ("queued", "running") and after["attempts"] <= 2
        assert httpx.get(f"{url}/readyz").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
