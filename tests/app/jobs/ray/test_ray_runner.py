"""The Ray runner on a real local Ray instance: same profile as the local runner, retries, cancel, takeover."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

pytest.importorskip("ray")  # the `ray` extra; without it these tests are skipped

from app.jobs import create_runner  # noqa: E402
from app.jobs.local import LocalRunner  # noqa: E402
from app.jobs.ray_runner import RayRunner, RaySettings  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store import create_store_engine, init_db  # noqa: E402
from app.store.tables import JobRow, ProfileRow  # noqa: E402
from profiler.schema import Profile  # noqa: E402
from tests.app.jobs.ray.helpers import (  # noqa: E402
    OPTIONS,
    SLOW_BERT,
    SLOW_OPTIONS,
    TINY_BERT,
    cancel_and_wait,
    enqueue,
    job_row,
    kill_task,
    last_task,
    task_pids,
    wait_job,
    wait_task,
)

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_instance")]
FINAL = ("succeeded", "failed", "cancelled")


def finished(row: JobRow) -> bool:
    return row.state in FINAL


def stored_profile(engine: Engine, row: JobRow) -> Profile:
    with Session(engine) as session:
        return Profile.model_validate_json(session.get(ProfileRow, row.profile_id).body)


def run_to_end(runner, engine: Engine, spec: dict, options: dict, key: str, timeout: float = 240) -> JobRow:
    runner.start()
    try:
        job_id = enqueue(engine, spec, options, key)
        runner.submit(job_id)
        return wait_job(engine, job_id, finished, timeout)
    finally:
        runner.stop()


def identity(profile: Profile) -> dict:
    """Everything but measured times: candidates, params, FLOPs, groups, layers, counts."""
    keys = ("id", "method", "group", "layer", "params", "flops", "inference_flops", "site", "config",
            "measurement", "activation_bytes")
    return {
        "model": profile.model.model_dump(), "inputs": profile.inputs, "seq_len": profile.seq_len,
        "candidates": [{k: getattr(c, k) for k in keys} for c in profile.candidates],
        "layers": [(la.index, la.path, la.forward_flops, la.backward_flops, la.memory_bytes)
                   for la in profile.layers],
        "num_units": profile.timings.num_units,
    }


def test_ray_and_local_runners_give_the_same_profile(settings: Settings, engine: Engine, tmp_path) -> None:
    spec = {"config": TINY_BERT}
    on_ray = run_to_end(RayRunner(settings, engine), engine, spec, OPTIONS, "same")
    assert on_ray.state == "succeeded", on_ray.error
    local_settings = Settings(db=str(tmp_path / "local.db"), worker_poll_s=0.05)
    local_engine = create_store_engine(local_settings.db)
    init_db(local_engine)
    local = run_to_end(LocalRunner(local_settings, local_engine), local_engine, spec, OPTIONS, "same")
    assert local.state == "succeeded", local.error
    ray_profile, local_profile = stored_profile(engine, on_ray), stored_profile(local_engine, local)
    assert identity(ray_profile) == identity(local_profile)
    assert len(ray_profile.candidates) > 10 and ray_profile.timings.measure_s > 0
    assert on_ray.done == on_ray.total == local.total == ray_profile.timings.num_units
    local_engine.dispose()


def test_a_killed_task_is_retried_and_one_that_keeps_dying_fails_the_job(
    settings: Settings, engine: Engine
) -> None:
    spec = {"config": SLOW_BERT}
    runner = RayRunner(settings, engine, RaySettings(task_retries=1))
    runner.start()
    try:
        job_id = enqueue(engine, spec, SLOW_OPTIONS, "retried")
        runner.submit(job_id)
        name = last_task(engine, job_id, timeout=120)
        killed = kill_task(job_id, name, timeout=120)
        wait_task(job_id, name, timeout=60, besides=killed)  # Ray runs it again on another worker
        row = wait_job(engine, job_id, finished, timeout=120)
    finally:
        runner.stop()
    assert row.state == "succeeded", row.error
    assert row.done == row.total and stored_profile(engine, row).layers

    runner = RayRunner(settings, engine, RaySettings(task_retries=0))
    runner.start()
    try:
        job_id = enqueue(engine, spec, {**SLOW_OPTIONS, "seed": 1}, "dies")
        runner.submit(job_id)
        kill_task(job_id, last_task(engine, job_id, timeout=120), timeout=120)
        row = wait_job(engine, job_id, finished, timeout=60)
    finally:
        runner.stop()
    assert row.state == "failed" and row.profile_id is None
    assert f"measure task {row.total} of {row.total}" in row.error and "died 1 time(s)" in row.error


def test_cancel_stops_the_tasks(settings: Settings, engine: Engine) -> None:
    runner = create_runner(settings, engine)  # PEFT_PLANNER_JOBS=ray
    assert isinstance(runner, RayRunner)
    runner.start()
    try:
        assert runner.healthy()
        job_id = enqueue(engine, {"config": SLOW_BERT}, {**SLOW_OPTIONS, "seed": 3}, "cancelled")
        runner.submit(job_id)
        wait_task(job_id, last_task(engine, job_id, timeout=120), timeout=120)
        cancel_and_wait(engine, runner, job_id)
        time.sleep(2)
        assert not task_pids(job_id)
        row = job_row(engine, job_id)
    finally:
        runner.stop()
    assert row.state == "cancelled" and row.profile_id is None and row.done < row.total


def test_a_second_service_takes_over_a_running_job_without_a_second_result(
    settings: Settings, engine: Engine
) -> None:
    old, new = RayRunner(settings, engine), RayRunner(settings, engine)
    old.start()
    try:
        job_id = enqueue(engine, {"config": SLOW_BERT}, {**SLOW_OPTIONS, "seed": 2}, "taken-over")
        old.submit(job_id)
        wait_task(job_id, last_task(engine, job_id, timeout=120), timeout=120)
        new.start()  # as a restarted service does: re-queue what was running
        row = wait_job(engine, job_id, finished, timeout=180)
    finally:
        new.stop()
        old.stop()
    assert row.state == "succeeded", row.error
    assert row.attempts == 2
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ProfileRow)) == 1
    assert not task_pids(job_id)
