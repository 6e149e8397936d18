"""A real `peft-planner serve` process, killed with SIGKILL and restarted on its database."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, kill, serve_command, start, stop

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


@pytest.mark.slow
def test_plans_and_jobs_survive_kill_9(tmp_path: Path) -> None:
    command = serve_command(free_port(), str(tmp_path / "service.db"))
    proc, url = start(command)
    try:
        plan = httpx.post(f"{url}/v1/plans", json={"problem": PROBLEM}).json()
        job = httpx.post(f"{url}/v1/profiles", json=SLOW_JOB).json()
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/v1/jobs/{job['id']}").json()["state"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        kill(proc)
    proc, url = start(command)
    try:
        assert httpx.get(f"{url}/v1/plans/{plan['id']}").json() == plan
        after = httpx.get(f"{url}/v1/jobs/{job['id']}").json()
        assert after["attempts"] >= 1
        if after["state"] != "succeeded":
            assert "restarted" in after["error"], after
            assert after["state"] in ("queued", "running") and after["attempts"] <= 2
        assert httpx.get(f"{url}/readyz").status_code == 200
    finally:
        stop(proc)
