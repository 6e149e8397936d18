"""Load test: plan requests against a stored profile on a real `peft-planner serve`.

    python benchmarks/load.py --requests 2000 --concurrency 16 --candidates 500

Stores a synthetic LLaMA-shaped profile (LoRA ranks on 4 projections per
layer plus per-layer BitFit, shared backward costs) in a fresh database,
starts the server on it, posts plans with budgets cycling over --budgets
distinct values, and prints throughput and latency percentiles. Results go
to benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.store import create_store_engine, init_db, profiles, session_factory  # noqa: E402
from profiler.schema import Profile  # noqa: E402

RANKS = (2, 4, 8, 16, 32, 64)
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
HIDDEN, TOKENS = 4096, 8 * 512


def synthetic_profile(candidates: int) -> Profile:
    """A LLaMA-7B-shaped profile with about `candidates` candidates."""
    per_layer = len(PROJECTIONS) * len(RANKS) + 1
    layers = max(1, candidates // per_layer)
    items = []
    for layer in range(layers):
        for proj in PROJECTIONS:
            site = f"model.layers.{layer}.self_attn.{proj}"
            for r in RANKS:
                params = r * 2 * HIDDEN
                items.append({
                    "id": f"{site}:lora:r{r}", "method": "lora", "group": site, "layer": layer,
                    "params": params, "flops": 6.0 * TOKENS * params,
                    "latency_ms": 0.05 * r ** 0.5, "memory_bytes": 16.0 * params,
                    "site": site, "config": {"rank": r},
                    "inference_flops": 2.0 * TOKENS * params, "train_step_ms": 0.1 * r ** 0.5,
                })
        site = f"model.layers.{layer}"
        items.append({
            "id": f"{site}:bitfit", "method": "bitfit", "group": None, "layer": layer,
            "params": 3 * HIDDEN, "flops": 6.0 * TOKENS * HIDDEN, "latency_ms": 0.01,
            "memory_bytes": 48.0 * HIDDEN, "site": site, "config": {},
            "inference_flops": 0.0, "train_step_ms": 0.01,
        })
    forward = 2.0 * TOKENS * 6.7e9
    return Profile.model_validate({
        "model": {"name": "synthetic-llama-7b", "total_params": 6_738_415_616,
                  "num_layers": layers, "forward_flops": forward},
        "device": "cpu", "dtype": "float32", "batch_size": 8, "seq_len": 512,
        "torch_version": "synthetic", "threads": 2, "candidates": items[:candidates],
        "layers": [{"index": i, "backward_flops": 2 * forward / layers, "memory_bytes": 5e8,
                    "forward_flops": forward / layers, "forward_ms": 0.0, "backward_ms": 0.0}
                   for i in range(layers)],
        "options": {}, "spec": {"name": "synthetic-llama-7b"},
    })


def store(db: str, profile: Profile) -> str:
    """Store the profile in a fresh database; returns its id."""
    engine = create_store_engine(db)
    init_db(engine)
    with session_factory(engine)() as session:
        row = profiles.save(session, "load-benchmark", profile.model_dump_json(),
                            profile.model.name, profile.model.total_params,
                            len(profile.candidates))
    engine.dispose()
    return row.id


async def hammer(url: str, bodies: list[dict], concurrency: int) -> tuple[list[float], int]:
    """Post every body with `concurrency` requests in flight; latencies (s) and errors."""
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                body = queue.get_nowait()
                start = time.perf_counter()
                response = await client.post("/v1/plans", json=body)
                latencies.append(time.perf_counter() - start)
                errors += response.status_code != 201

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--budgets", type=int, default=50, help="distinct budgets cycled")
    parser.add_argument("--objective", default="gain", choices=["gain", "efficiency"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/load.json"))
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="peft-planner-load-")
    db = f"{tmp}/load.db"
    profile = synthetic_profile(args.candidates)
    profile_id = store(db, profile)
    gains = {"methods": {"lora": {"default": 1.0, "layers": {str(i): 1.0 + 0.05 * i
                                                           for i in range(0, 32, 3)}},
                         "bitfit": 0.3}}
    bodies = [
        {"profile_id": profile_id, "objective": args.objective, "gains": gains,
         "budget": {"params": f"{0.01 + 0.002 * (i % args.budgets):.3f}%", "flops": "60%"}}
        for i in range(args.requests)
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--db", db, "--port", str(args.port),
         "--log-level", "warning"], env=env,
    )
    url = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        asyncio.run(hammer(url, bodies[:20], 2))  # warm-up: imports, caches
        start = time.perf_counter()
        latencies, errors = asyncio.run(hammer(url, bodies, args.concurrency))
        wall = time.perf_counter() - start
        solve_ms = [p["plan"]["solve_ms"] for p in httpx.get(
            f"{url}/v1/plans", params={"limit": 500}).json()["items"]]
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    ms = [x * 1e3 for x in latencies]
    result = {
        "requests": args.requests, "concurrency": args.concurrency,
        "candidates": len(profile.candidates), "distinct_budgets": args.budgets,
        "objective": args.objective, "errors": errors,
        "throughput_rps": round(args.requests / wall, 1),
        "p50_ms": round(ms[len(ms) // 2], 1), "p90_ms": round(ms[int(len(ms) * 0.9)], 1),
        "p99_ms": round(ms[int(len(ms) * 0.99)], 1), "max_ms": round(ms[-1], 1),
        "median_solve_ms": round(statistics.median(solve_ms), 1),
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }
    print(f"{result['requests']} plan requests, concurrency {result['concurrency']}, "
          f"{result['candidates']} candidates, {result['distinct_budgets']} budgets")
    print(f"throughput {result['throughput_rps']} req/s   p50 {result['p50_ms']} ms   "
          f"p90 {result['p90_ms']} ms   p99 {result['p99_ms']} ms   max {result['max_ms']} ms   "
          f"errors {errors}   median solve {result['median_solve_ms']} ms")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
