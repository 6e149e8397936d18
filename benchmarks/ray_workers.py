"""Benchmark: wall time of one job on the Ray runner with 1 and with 2 local Ray workers.

    python -m benchmarks.ray_workers [--job profile|probe-gains] [--model bert-base] [--runs 3] [--workers 1 2]

For each worker count it starts a local Ray instance with that many CPUs (one task per CPU, one torch
thread each), runs one untimed warm-up job (worker processes import torch), then `--runs` timed jobs of
the same work. Job wall time is queue to `succeeded`.

* `profile`: a profiling job of `--model` (the seed differs, so the profile cache never answers);
  `measure_s` is the fan-out stage alone. Writes benchmarks/results/ray.json and ray.md.
* `probe-gains`: a `probe` gains job (one fine-tune per candidate, one Ray task each) on a random
  2-layer BERT and 80 toy reviews (the test suite's tiny task). Writes benchmarks/results/ray-probe-gains.json
  and ray-probe-gains.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import ray
from sqlalchemy.orm import Session

from app.jobs.ray_runner import RayRunner, RaySettings
from app.settings import Settings
from app.store import create_store_engine, datasets, init_db, jobs
from app.store.tables import JobRow, ProfileRow
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.schema import Profile
from tests.app.service_helpers import save_tiny_bert, store_profile, toy_jsonl

RESULTS = Path(__file__).parent / "results"
OPTIONS = {"methods": ["lora", "adapter", "bitfit", "norm_affine"], "batch_size": 4, "seq_len": 128,
           "device": "cpu", "threads": 1}
GAINS_PROFILE = {"methods": ["lora", "bitfit"], "ranks": [2, 8], "batch_size": 1, "seq_len": 8, "device": "cpu",
                 "repeats": 1, "warmup": 0}
GAINS_TRAIN = {"steps": 120, "batch_size": 16}


def _run_job(runner: RayRunner, kind: str, spec: dict, options: dict) -> tuple[JobRow, float]:
    """Queue one job, wait for it; its finished row and its wall time in s, queue to `succeeded`."""
    with Session(runner.engine) as session:
        job = jobs.enqueue(session, spec, options, f"{kind}:{time.time_ns()}", kind=kind)
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
    return row, wall


def _profile_job(model: str) -> Callable[[RayRunner, int], dict]:
    def run(runner: RayRunner, seed: int) -> dict:
        row, wall = _run_job(runner, "profile", {"name": model}, {**OPTIONS, "seed": seed})
        with Session(runner.engine) as session:
            profile = Profile.model_validate_json(session.get(ProfileRow, row.profile_id).body)
        return {"wall_s": wall, "prepare_s": profile.timings.prepare_s, "measure_s": profile.timings.measure_s,
                "tasks": profile.timings.num_units, "candidates": len(profile.candidates)}

    return run


def _probe_gains_job(db: str, tmp: Path) -> Callable[[RayRunner, int], dict]:
    """A probe gains job on a stored profile of a random 2-layer BERT (under the models root `tmp`) and a toy dataset."""
    if not (tmp / "tiny-bert").exists():
        save_tiny_bert(tmp / "tiny-bert")
    profile = profile_model(ModelSpec(path=str(tmp / "tiny-bert")), ProfileOptions(**GAINS_PROFILE))
    profile_id = store_profile(db, profile.model_copy(update={"spec": ModelSpec(path="tiny-bert")}))
    engine = create_store_engine(db)
    with Session(engine) as session:
        dataset_id = datasets.add(session, "toy", "jsonl", "-", {}, toy_jsonl(80).encode()).id
        session.commit()
    engine.dispose()

    def run(runner: RayRunner, seed: int) -> dict:
        spec = {"source": "probe", "profile_id": profile_id, "train": {**GAINS_TRAIN, "seed": seed},
                "task": {"dataset_id": dataset_id, "model_path": "tiny-bert"}}
        row, wall = _run_job(runner, "gains", spec, {})
        return {"wall_s": wall, "tasks": row.total, "candidates": len(profile.candidates)}

    return run


def bench(workers: int, job: str, model: str, runs: int, db: str, tmp: Path) -> dict:
    """Time `runs` jobs on a fresh local Ray instance with `workers` CPUs."""
    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
    engine = create_store_engine(db)
    init_db(engine)
    run = _profile_job(model) if job == "profile" else _probe_gains_job(db, tmp)
    runner = RayRunner(Settings(db=db, jobs="ray", worker_poll_s=0.05, models_root=tmp), engine,
                       RaySettings(max_jobs=1))
    runner.start()
    try:
        run(runner, 1000 + workers)
        timed = [run(runner, workers * 100 + i) for i in range(runs)]
    finally:
        runner.stop()
        ray.shutdown()
        engine.dispose()
    print(f"{workers} worker(s): " + ", ".join(f"{r['wall_s']:.1f} s" for r in timed), flush=True)
    medians = {f"median_{key}": statistics.median(r[key] for r in timed)
               for key in ("wall_s", "measure_s", "prepare_s") if key in timed[0]}
    return {"workers": workers, "runs": timed, **medians}


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
Reproduce: `python -m benchmarks.ray_workers`.
"""


def _gains_markdown(result: dict) -> str:
    def each(r: dict) -> str:
        return " / ".join(f"{x['wall_s']:.1f}" for x in r["runs"])

    rows = "\n".join(f"| {r['workers']} | {r['median_wall_s']:.1f} | {each(r)} |" for r in result["results"])
    first, last = result["results"][0], result["results"][-1]
    return f"""## Probe gains on Ray

Wall time of one `probe` gains job (a random 2-layer BERT of hidden size 64, {last['runs'][0]['candidates']}
candidates: LoRA at ranks 2 and 8 and BitFit; 80 toy reviews, 64 / 16 split; {GAINS_TRAIN['steps']} steps at
batch {GAINS_TRAIN['batch_size']} per probe), queue to `succeeded`: the head-only baseline in the `prepare` task,
then {last['runs'][0]['tasks']} probe tasks, one per candidate, on a local Ray instance with 1 and 2 CPUs (one
torch thread per task), median of {result['runs']} jobs after a warm-up job ({result['machine']}):

| Ray workers | job wall (s), median | each job (s) |
|---|---|---|
{rows}

With 2 workers the job takes {last['median_wall_s'] / first['median_wall_s']:.2f}× the time it takes with 1.
The baseline (one run, in `prepare`) does not split; each probe is short (about
{first['median_wall_s'] / last['runs'][0]['tasks']:.1f} s of one thread at most), so every task's start-up (fetching the
prepared task from the object store) weighs; and on this 2-core machine the second worker shares the cores with
everything else running there (see the load average): the figure holds for that machine, not for workers on
separate machines. Reproduce: `python -m benchmarks.ray_workers --job probe-gains`.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", choices=["profile", "probe-gains"], default="profile")
    parser.add_argument("--model", default="bert-base", help="the model of profiling jobs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench(n, args.job, args.model, args.runs, f"{tmp}/ray-{n}.db", Path(tmp)) for n in args.workers]
    machine = f"{os.cpu_count()} cores, load average {load:.1f} at the start"
    RESULTS.mkdir(exist_ok=True)
    if args.job == "profile":
        result = {"model": args.model, "options": OPTIONS, "runs": args.runs, "machine": machine, "results": results}
        name, text = "ray", _markdown(result)
    else:
        result = {"profile": GAINS_PROFILE, "train": GAINS_TRAIN, "runs": args.runs, "machine": machine,
                  "results": results}
        name, text = "ray-probe-gains", _gains_markdown(result)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
