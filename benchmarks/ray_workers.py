"""Benchmark: wall time of one profiling job on the Ray runner with 1 and with 2 local Ray workers.

    python benchmarks/ray_workers.py [--model bert-base] [--runs 3] [--workers 1 2]

For each worker count it starts a local Ray instance with that many CPUs (one measurement unit per CPU,
`threads: 1`), runs one untimed warm-up job (worker processes import torch), then `--runs` timed jobs of the
same work (the seed differs, so the profile cache never answers). Job wall time is queue to `succeeded`;
`measure_s` is the fan-out stage alone. Writes benchmarks/results/ray.json and benchmarks/results/ray.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import ray
from sqlalchemy.orm import Session

from app.jobs.ray_runner import RayRunner, RaySettings
from app.settings import Settings
from app.store import create_store_engine, init_db, jobs
from app.store.tables import JobRow, ProfileRow
from profiler.schema import Profile

RESULTS = Path(__file__).parent / "results"
OPTIONS = {"methods": ["lora", "adapter", "bitfit", "norm_affine"], "batch_size": 4, "seq_len": 128,
           "device": "cpu", "threads": 1}


def _run_job(runner: RayRunner, model: str, seed: int) -> dict:
    """Queue one job, wait for it, return its wall time and profile timings."""
    with Session(runner.engine) as session:
        job = jobs.enqueue(session, {"name": model}, {**OPTIONS, "seed": seed}, f"{model}:{seed}")
        session.commit()
        job_id = job.id
    start = time.perf_counter()
    runner.submit(job_id)
    while True:
        with Session(runner.engine) as session:
            row = session.get(JobRow, job_id)
            if row.state not in ("queued", "running"):
                break
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if row.state != "succeeded":
        raise SystemExit(f"job {job_id} {row.state}: {row.error}")
    with Session(runner.engine) as session:
        profile = Profile.model_validate_json(session.get(ProfileRow, row.profile_id).body)
    return {"wall_s": wall, "prepare_s": profile.timings.prepare_s, "measure_s": profile.timings.measure_s,
            "tasks": profile.timings.num_units, "candidates": len(profile.candidates)}


def bench(workers: int, model: str, runs: int, db: str) -> dict:
    """Time `runs` jobs on a fresh local Ray instance with `workers` CPUs."""
    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
    engine = create_store_engine(db)
    init_db(engine)
    runner = RayRunner(Settings(db=db, jobs="ray", worker_poll_s=0.05), engine, RaySettings(max_jobs=1))
    runner.start()
    try:
        _run_job(runner, model, seed=1000 + workers)
        timed = [_run_job(runner, model, seed=workers * 100 + i) for i in range(runs)]
    finally:
        runner.stop()
        ray.shutdown()
        engine.dispose()
    print(f"{workers} worker(s): " + ", ".join(f"{r['wall_s']:.1f} s" for r in timed), flush=True)
    return {
        "workers": workers, "runs": timed,
        "median_wall_s": statistics.median(r["wall_s"] for r in timed),
        "median_measure_s": statistics.median(r["measure_s"] for r in timed),
        "median_prepare_s": statistics.median(r["prepare_s"] for r in timed),
    }


def _markdown(result: dict) -> str:
    rows = "\n".join(
        f"| {r['workers']} | {r['median_wall_s']:.1f} | {r['median_prepare_s']:.1f} | {r['median_measure_s']:.1f} |"
        for r in result["results"])
    first, last = result["results"][0], result["results"][-1]
    speedup = first["median_measure_s"] / last["median_measure_s"]
    return f"""## Scaling out with Ray

Set `PEFT_PLANNER_JOBS=ray` (after `pip install '.[ray]'`) and profiling jobs run on Ray: the service
process is the Ray driver; each job runs `prepare` as one task, then one task per unique measurement (and,
with gains from probe fine-tunes, one per candidate), then `assemble`, and stores the same profile the
local runner does. Progress counts finished tasks; cancelling a job force-cancels its tasks.

* **Which cluster.** `RAY_ADDRESS` names an existing cluster (`ray://head:10001` for Ray Client, or
  `head:6379` when the service runs on a cluster node); unset, the service starts a local Ray instance
  (`PEFT_PLANNER_RAY_NUM_CPUS` caps its CPUs). The cluster's workers must have the same `peft-planner`
  installed (`pip install 'peft-planner[ray]'` in the image): tasks import `profiler` there.
* **KubeRay / `ray up`.** Build the worker image from this repository's Dockerfile plus the `ray` extra,
  deploy a `RayCluster` (KubeRay) or `ray up cluster.yaml` with GPU worker groups, and point the service at
  the head's client port: `RAY_ADDRESS=ray://<head-service>:10001`. Autoscaling adds GPU nodes for pending
  tasks.
* **Resources.** Each task asks for one GPU when the job's device is `cuda` (or `auto` on a cluster with
  GPUs), else `threads` CPUs (default 1). A task that no node can run stays pending; a job none of whose
  tasks finishes in `PEFT_PLANNER_RAY_STALL_TIMEOUT_S` (default 900) fails with the resources it asked for.
* **Faults.** A task whose worker process dies is retried `PEFT_PLANNER_RAY_TASK_RETRIES` times (default 2);
  an exception in a task is not retried and fails the job with its message. Only the driver writes to the
  database, and only while its claim on the job holds: a restarted service re-queues the job and runs it
  again (up to `PEFT_PLANNER_JOB_MAX_ATTEMPTS`), a stale driver stops and cancels its tasks, and the profile
  is stored once per cache key.
* **New task kinds.** The fan-out is a list of stages in `app/jobs/ray_tasks.py` (units, run one unit,
  fold results into the profile); probe fine-tunes become one more stage with one unit per candidate.

Wall time of one profiling job (`{result['model']}`, methods {', '.join(OPTIONS['methods'])}, batch
{OPTIONS['batch_size']} × {OPTIONS['seq_len']} tokens, CPU, 1 thread per task: {last['runs'][0]['tasks']} measurement
tasks, {last['runs'][0]['candidates']} candidates), median of {result['runs']} jobs after a warm-up job, on a local
Ray instance with 1 and 2 CPUs ({result['machine']}):

| Ray workers | job wall (s) | prepare (s) | measure fan-out (s) |
|---|---|---|---|
{rows}

The fan-out stage runs {speedup:.2f}× faster on 2 workers; `prepare` (one task: build and trace the model)
does not split. On this 2-core machine the second worker shares the cores with everything else running there
(see the load average): the figure holds for that machine, not for workers on separate machines.
Reproduce: `python benchmarks/ray_workers.py`.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bert-base")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench(n, args.model, args.runs, f"{tmp}/ray-{n}.db") for n in args.workers]
    machine = f"{os.cpu_count()} cores, load average {load:.1f} at the start"
    result = {"model": args.model, "options": OPTIONS, "runs": args.runs, "machine": machine, "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "ray.md").write_text(_markdown(result))
    print(_markdown(result))


if __name__ == "__main__":
    main()
