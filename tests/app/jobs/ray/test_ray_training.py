"""Gains and validation jobs on a real local Ray instance: one task per run, the same results as the local runner,
cancelling force-cancels the training tasks, a job training on CUDA asks its tasks for a GPU.

A tiny random BERT and 80 toy reviews; fixed seeds, 20 steps at rates where the probes differ. The local side runs each job as a
worker does (`app.jobs.execute.run_job`) with one torch thread, as each Ray task does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine
from sqlalchemy.orm import Session

pytest.importorskip("ray")  # the `ray` extra; without it these tests are skipped

from app.jobs.execute import run_job  # noqa: E402
from app.jobs.ray_runner import RayRunner, RaySettings  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store import create_store_engine, datasets, init_db, jobs, plans  # noqa: E402
from app.store.tables import JobRow, ProfileRow, new_id  # noqa: E402
from profiler import ModelSpec, ProfileOptions, profile_model  # noqa: E402
from profiler.schema import Profile  # noqa: E402
from tests.app.jobs.ray.helpers import cancel_and_wait, job_row, wait_job, wait_task  # noqa: E402
from tests.app.service_helpers import PROFILE_OPTIONS, save_tiny_bert, store_profile, toy_jsonl  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_instance")]
TRAIN = {"steps": 20, "batch_size": 8, "seed": 2, "lr": {"head": 1e-3, "lora": 0.05, "bitfit": 0.05}}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models root holding the tiny BERT (weights and tokenizer)."""
    root = tmp_path_factory.mktemp("models")
    save_tiny_bert(root / "tiny-bert")
    return root


@pytest.fixture
def store(tmp_path: Path, models: Path) -> Iterator[tuple[Settings, Engine, str, str, str]]:
    """Settings, engine, and the ids of a stored profile of the tiny BERT, a toy dataset and a plan on the profile."""
    settings = Settings(db=str(tmp_path / "service.db"), jobs="ray", models_root=models, worker_poll_s=0.05)
    engine = create_store_engine(settings.db)
    init_db(engine)
    profile = profile_model(ModelSpec(path=str(models / "tiny-bert")), ProfileOptions(**PROFILE_OPTIONS))
    profile = profile.model_copy(update={"spec": ModelSpec(path="tiny-bert")})
    profile_id = store_profile(settings.db, profile)
    body = toy_jsonl(80).encode()
    with Session(engine) as session:
        dataset_id = datasets.add(session, "toy", "jsonl", "sha", {}, body).id
        session.commit()
        selected = [c.id for c in profile.candidates[:2]]
        plan_id = plans.add(session, {"selected": selected, "gain": 1.5}, {}, "h", "{}", profile_id).id
    yield settings, engine, profile_id, dataset_id, plan_id
    engine.dispose()


def queue(engine: Engine, kind: str, spec: dict) -> str:
    with Session(engine) as session:
        job = jobs.enqueue(session, spec, {}, new_id(), kind=kind)
        session.commit()
        return job.id


def run_locally(settings: Settings, engine: Engine, kind: str, spec: dict) -> JobRow:
    """Run a job as a local worker does, with one torch thread; its final row."""
    job_id = queue(engine, kind, spec)
    job = jobs.claim_next(engine, "local", "local")
    assert job is not None and job.id == job_id
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_job(engine, job, "local", settings, lambda: False)
    finally:
        torch.set_num_threads(threads)
    return job_row(engine, job_id)


def run_on_ray(runner: RayRunner, engine: Engine, kind: str, spec: dict) -> JobRow:
    job_id = queue(engine, kind, spec)
    runner.submit(job_id)
    return wait_job(engine, job_id, lambda r: r.state in ("succeeded", "failed", "cancelled"), timeout=240)


def gains_of(engine: Engine, row: JobRow) -> dict[str, tuple[float, dict]]:
    with Session(engine) as session:
        profile = Profile.model_validate_json(session.get(ProfileRow, row.profile_id).body)
    return {c.id: (c.gain, c.gain_details) for c in profile.candidates}


def test_gains_and_validation_on_ray_match_the_local_runner(store) -> None:
    settings, engine, profile_id, dataset_id, plan_id = store
    task = {"dataset_id": dataset_id, "model_path": "tiny-bert"}
    specs = {
        "probe": ("gains", {"source": "probe", "task": task, "train": TRAIN, "profile_id": profile_id}),
        "gradient": ("gains", {"source": "gradient", "task": task, "train": TRAIN, "profile_id": profile_id}),
        "validation": ("validation", {"task": task, "train": TRAIN, "seeds": 2, "plan_id": plan_id}),
    }
    local = {name: run_locally(settings, engine, kind, spec) for name, (kind, spec) in specs.items()}
    runner = RayRunner(settings, engine)
    runner.start()
    try:
        ray = {name: run_on_ray(runner, engine, kind, spec) for name, (kind, spec) in specs.items()}
    finally:
        runner.stop()
    for name in specs:
        assert local[name].state == "succeeded", local[name].error
        assert ray[name].state == "succeeded", ray[name].error

    candidates = len(gains_of(engine, local["probe"]))
    assert ray["probe"].done == ray["probe"].total == candidates  # one task per probe
    assert ray["validation"].done == ray["validation"].total == 4  # plan and baseline, per seed
    report, ray_report = local["gradient"].result, ray["gradient"].result
    assert ray["gradient"].total == len(report["bundles"]) + len(report["mixtures"]) + 1  # and full fine-tuning

    for name in ("probe", "gradient"):  # every candidate's gain and details, within float noise
        here, there = gains_of(engine, local[name]), gains_of(engine, ray[name])
        assert here.keys() == there.keys()
        for cid, (gain, details) in here.items():
            assert there[cid][0] == pytest.approx(gain, rel=1e-4, abs=1e-6), cid
            assert there[cid][1].get("accuracy") == details.get("accuracy"), cid
    for key in ("baseline_accuracy", "full_points"):
        assert ray_report[key] == pytest.approx(report[key], abs=1e-9)
    assert [b["points"] for b in ray_report["bundles"]] == pytest.approx([b["points"] for b in report["bundles"]])
    assert ray_report["calibration"]["points_per_nat"] == pytest.approx(
        report["calibration"]["points_per_nat"], rel=1e-3)

    here, there = local["validation"].result, ray["validation"].result
    assert there["realized_points"] == pytest.approx(here["realized_points"], abs=1e-9)
    assert [r["seed"] for r in there["plan_runs"]] == [r["seed"] for r in here["plan_runs"]] == [2, 3]
    assert [r["accuracy"] for r in there["baseline_runs"]] == [r["accuracy"] for r in here["baseline_runs"]]
    assert there["predicted_points"] == here["predicted_points"] == 1.5


def test_cancelling_a_validation_job_stops_its_training_tasks(store) -> None:
    settings, engine, _profile_id, dataset_id, plan_id = store
    runner = RayRunner(settings, engine)
    runner.start()
    try:
        spec = {"task": {"dataset_id": dataset_id, "model_path": "tiny-bert"}, "train": {**TRAIN, "steps": 5000},
                "seeds": 1, "plan_id": plan_id}
        job_id = queue(engine, "validation", spec)
        runner.submit(job_id)
        wait_task(job_id, f"peft-planner:train:{job_id}:0", timeout=120)
        cancel_and_wait(engine, runner, job_id)
        row = job_row(engine, job_id)
    finally:
        runner.stop()
    assert row.state == "cancelled" and row.result is None and row.done < row.total == 2


def test_a_job_training_on_cuda_asks_for_a_gpu_and_fails_when_none_comes(store) -> None:
    settings, engine, profile_id, dataset_id, _plan_id = store
    runner = RayRunner(settings, engine, RaySettings(stall_timeout_s=2))
    runner.start()
    try:
        spec = {"source": "probe", "task": {"dataset_id": dataset_id, "model_path": "tiny-bert"},
                "train": {**TRAIN, "device": "cuda"}, "profile_id": profile_id}
        row = run_on_ray(runner, engine, "gains", spec)
    finally:
        runner.stop()
    assert row.state == "failed" and row.profile_id is None
    assert "no task finished in 2 s" in row.error and "num_gpus=1" in row.error, row.error
