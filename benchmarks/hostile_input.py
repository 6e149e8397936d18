"""Benchmark: every hostile-input case of the fault suite against a real `peft-planner serve`: status and latency.

    python -m benchmarks.hostile_input [--repeats 5]     (from the repository root)

The cases are `tests/app/api/test_hostile_input.CASES` (the suite checks each answer's status and
detail; this measures how fast it comes). Each case is sent once (`first`, on a
fresh server: the first config case pays the transformers import), then `--repeats` times (median, max). Writes benchmarks/results/hostile_input.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.app.api.test_hostile_input import CASES, NDJSON, _good_rows, _jsonl, fill, make_models
from tests.app.service_helpers import store_profile, synthetic_profile
from tests.servers import ROOT, free_port, serve_command, start, stop

LIMIT_MS = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/hostile_input.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        root.mkdir()
        make_models(root)
        db = str(Path(tmp) / "service.db")
        proc, url = start(serve_command(free_port(), db, "--models-root", str(root)))
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                dataset = client.post("/v1/datasets?format=jsonl", content=_jsonl(_good_rows()), headers=NDJSON)
                ids = {"profile_id": store_profile(db, synthetic_profile()), "dataset_id": dataset.json()["id"]}
                rows = []
                for case in CASES:
                    path, body = fill(case, ids)
                    times, statuses = [], set()
                    for _ in range(args.repeats + 1):
                        t0 = time.perf_counter()
                        response = client.request(case.method, path, content=body or None, headers=case.headers)
                        times.append((time.perf_counter() - t0) * 1e3)
                        statuses.add(response.status_code)
                    first, times = times[0], times[1:]
                    rows.append({"case": case.name, "status": sorted(statuses), "expected": case.status,
                                 "problem_json": response.headers["content-type"] == "application/problem+json",
                                 "first_ms": round(first, 2), "median_ms": round(statistics.median(times), 2),
                                 "max_ms": round(max(times), 2)})
        finally:
            stop(proc)
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':{width}}  status  first ms  median ms  max ms")
    for r in rows:
        print(f"{r['case']:{width}}  {'/'.join(map(str, r['status'])):6}  {r['first_ms']:8.2f}  {r['median_ms']:9.2f}"
              f"  {r['max_ms']:6.2f}")
    worst = max(max(r["max_ms"], r["first_ms"]) for r in rows)
    ok = all(r["status"] == [r["expected"]] and r["problem_json"] for r in rows)
    print(f"\n{len(rows)} cases: every answer as expected and problem+json: {ok}; "
          f"slowest {worst:.1f} ms (limit {LIMIT_MS:g} ms)")
    Path(args.out).write_text(json.dumps({"repeats": args.repeats, "limit_ms": LIMIT_MS, "all_expected": ok,
                                          "worst_ms": worst, "cases": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
