"""Load test: plan requests against a stored profile on a real `peft-planner serve`.

    python -m benchmarks.load --requests 2000 --concurrency 16 --candidates 500 [--distinct-problems]

Stores a synthetic LLaMA-shaped profile (LoRA ranks on 4 projections per
layer plus per-layer BitFit, shared backward costs) in a fresh database,
starts the server on it, posts plans with budgets cycling over --budgets
distinct values, and prints throughput, latency percentiles and the CPU
time server and client spent per request. Each run is recorded in
benchmarks/results/load.json (replacing an earlier run with equal settings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from app.store import create_store_engine, init_db, profiles, session_factory
from profiler.schema import Profile

ROOT = Path(__file__).resolve().parents[1]

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


class Connection:
    """One keep-alive HTTP/1.1 connection that posts JSON and reads the status and Location.

    A deliberately small client: httpx spent ~4.5 ms of CPU per request here
    (more than the server), on the same 2 cores, and its own event loop's
    queueing was counted as latency. Requests are still real HTTP over TCP.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host.encode()

    @classmethod
    async def open(cls, url: str) -> Connection:
        """Connect to `url` (http://host:port)."""
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def post(self, path: str, body: bytes) -> tuple[int, str | None]:
        """POST `body` as JSON; the status and Location header (the body is read and dropped)."""
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host, len(body), body)
        )
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        headers = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().decode()
        await self.reader.readexactly(int(headers[b"content-length"]))
        return status, headers.get(b"location")

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        await self.writer.wait_closed()


async def hammer(url: str, bodies: list[dict], concurrency: int) -> tuple[list[float], int]:
    """Post every body with `concurrency` connections in flight; latencies (s) and errors.

    A response counts as an error unless it is a 201 with a Location.
    """
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(json.dumps(body).encode())

    async def worker() -> None:
        nonlocal errors
        connection = await Connection.open(url)
        try:
            while not queue.empty():
                body = queue.get_nowait()
                start = time.perf_counter()
                status, location = await connection.post("/v1/plans", body)
                latencies.append(time.perf_counter() - start)
                errors += status != 201 or location is None
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fresh_solves(url: str) -> list[float]:
    """`solve_ms` of every stored plan that was solved rather than reused."""
    solved, offset = [], 0
    while True:
        page = httpx.get(f"{url}/v1/plans", params={"limit": 500, "offset": offset}).json()
        solved += [p["plan"]["solve_ms"] for p in page["items"] if not p["source"]["reused"]]
        offset += len(page["items"])
        if offset >= page["total"] or not page["items"]:
            return solved


def plan_body(profile_id: str, i: int, args: argparse.Namespace) -> dict:
    """Return request i: budgets cycle over `args.budgets` values, or (distinct problems) gains and budget its own."""
    if args.distinct_problems:
        rng = random.Random(i)
        layers = {str(k): round(rng.uniform(0.5, 1.5), 6) for k in range(32)}
        budget = f"{0.01 + 0.04 * rng.random():.6f}%"
    else:
        layers = {str(k): 1.0 + 0.05 * k for k in range(0, 32, 3)}
        budget = f"{0.01 + 0.002 * (i % args.budgets):.3f}%"
    gains = {"methods": {"lora": {"default": 1.0, "layers": layers}, "bitfit": 0.3}}
    return {"profile_id": profile_id, "objective": args.objective, "gains": gains,
            "budget": {"params": budget, "flops": "60%"}}


def record(out: Path, result: dict) -> None:
    """Add `result` to the runs in `out`, replacing a run with the same settings."""
    keys = ("requests", "concurrency", "candidates", "distinct_budgets", "distinct_problems", "objective")
    runs = json.loads(out.read_text()).get("runs", []) if out.exists() else []
    runs = [r for r in runs if any(r.get(k, False) != result[k] for k in keys)] + [result]
    runs.sort(key=lambda r: [r.get(k, False) for k in keys])
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--budgets", type=int, default=50, help="distinct budgets cycled")
    parser.add_argument("--distinct-problems", action="store_true",
                        help="every request a new problem (its own layer gains and budget): nothing is reused")
    parser.add_argument("--objective", default="gain", choices=["gain", "efficiency"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/load.json"))
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="peft-planner-load-")
    db = f"{tmp}/load.db"
    profile = synthetic_profile(args.candidates)
    profile_id = store(db, profile)
    bodies = [plan_body(profile_id, i, args) for i in range(args.requests)]
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
        solved_before = len(fresh_solves(url))
        server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
        start = time.perf_counter()
        latencies, errors = asyncio.run(hammer(url, bodies, args.concurrency))
        wall = time.perf_counter() - start
        server_cpu = cpu_seconds(server.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        solve_ms = fresh_solves(url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    ms = [x * 1e3 for x in latencies]
    result = {
        "requests": args.requests, "concurrency": args.concurrency,
        "candidates": len(profile.candidates), "distinct_budgets": args.budgets,
        "distinct_problems": args.distinct_problems,
        "objective": args.objective, "errors": errors,
        "throughput_rps": round(args.requests / wall, 1),
        "p50_ms": round(ms[len(ms) // 2], 1), "p90_ms": round(ms[int(len(ms) * 0.9)], 1),
        "p99_ms": round(ms[int(len(ms) * 0.99)], 1), "max_ms": round(ms[-1], 1),
        "solved_in_run": len(solve_ms) - solved_before,
        "median_solve_ms": round(statistics.median(solve_ms), 1),
        "server_cpu_ms_per_request": round(server_cpu / args.requests * 1e3, 2),
        "client_cpu_ms_per_request": round(client_cpu / args.requests * 1e3, 2),
        "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 1),
        "python": platform.python_version(),
    }
    mix = "every problem new" if args.distinct_problems else f"{result['distinct_budgets']} budgets"
    print(f"{result['requests']} plan requests, concurrency {result['concurrency']}, "
          f"{result['candidates']} candidates, {mix}")
    print(f"throughput {result['throughput_rps']} req/s   p50 {result['p50_ms']} ms   "
          f"p90 {result['p90_ms']} ms   p99 {result['p99_ms']} ms   max {result['max_ms']} ms   "
          f"errors {errors}")
    print(f"solved in the run {result['solved_in_run']} (median {result['median_solve_ms']} ms)   "
          f"CPU per request: server {result['server_cpu_ms_per_request']} ms, "
          f"client {result['client_cpu_ms_per_request']} ms   "
          f"load average {result['load_average_1m']}")
    record(Path(args.out), result)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
