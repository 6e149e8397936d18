"""A real `peft-planner serve` process, killed with SIGKILL and restarted on its database."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from solver.examples import llama_like_problem
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


@pytest.mark.slow
def test_every_idempotency_key_answers_after_kill_9_mid_request(tmp_path: Path) -> None:
    db = tmp_path / "service.db"
    command = serve_command(free_port(), str(db))
    proc, url = start(command)
    # Slow requests (efficiency plans of ~1,200 candidates), so most keys are mid-request at the kill.
    bodies = {f"key-{i}": {"problem": llama_like_problem(1200, seed=i, objective="efficiency",
                                                        min_gain_fraction=0.3).model_dump(mode="json")}
              for i in range(16)}

    def post(key: str) -> None:
        try:
            httpx.post(f"{url}/v1/plans", json=bodies[key], headers={"Idempotency-Key": key}, timeout=60)
        except httpx.HTTPError:
            pass  # the server was killed under it

    threads = [threading.Thread(target=post, args=(key,)) for key in bodies]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    kill(proc)
    for thread in threads:
        thread.join()
    store = sqlite3.connect(db)
    assert store.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    pending = store.execute("SELECT count(*) FROM idempotency_keys WHERE status_code IS NULL").fetchone()[0]
    store.close()
    assert pending > 0, "no request was in flight at the kill: the test shows nothing"
    proc, url = start(command)
    try:
        for key, body in bodies.items():
            answer = httpx.post(f"{url}/v1/plans", json=body, headers={"Idempotency-Key": key}, timeout=120)
            assert answer.status_code == 201, (key, answer.text)  # a replay of a finished one, or a fresh plan
            again = httpx.post(f"{url}/v1/plans", json=body, headers={"Idempotency-Key": key}, timeout=120)
            assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
            assert again.json() == answer.json()
    finally:
        stop(proc)
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)

