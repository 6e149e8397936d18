"""Profiling jobs through the API: queueing, limits, cancelling, recovery, model specs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.store import create_store_engine, instances, jobs, session_factory
from app.store.tables import JobRow
from tests.tiny import TINY_BERT

OPTIONS = {"methods": ["lora", "bitfit"], "ranks": [4], "batch_size": 1, "seq_len": 8,
           "device": "cpu", "repeats": 1, "warmup": 0}


def tiny_request(**config) -> dict:
    return {"model": {"config": {**TINY_BERT, **config}}, "options": OPTIONS}


def wait_for(client: TestClient, url: str, states: tuple[str, ...], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(url).json()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{url} did not reach {states}: {job}")


def test_job_runs_in_a_worker_and_its_profile_is_reused(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        assert c.get("/readyz").status_code == 200
        r = c.post("/v1/profiles", json=tiny_request())
        assert r.status_code == 202, r.text
        assert r.json()["state"] == "queued" and r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
        job = wait_for(c, r.headers["location"], ("succeeded", "failed"))
        assert job["state"] == "succeeded", job["error"]
        assert job["progress"]["done"] == job["progress"]["total"] > 0
        assert job["timings"]["running_s"] >= 0 and job["attempts"] == 1
        profile = c.get(job["profile_url"]).json()
        assert profile["model"]["num_layers"] == 2 and profile["candidates"]
        again = c.post("/v1/profiles", json=tiny_request())
        assert again.status_code == 200 and again.json()["cached"]
        assert again.json()["profile_id"] == job["profile_id"]
        listed = c.get("/v1/profiles").json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == job["profile_id"]
        gains = {"methods": {"lora": 1.0, "bitfit": 0.2}}
        plan = c.post("/v1/plans", json={"profile_id": job["profile_id"],
                                         "budget": {"params": "5%"}, "gains": gains})
        assert plan.status_code == 201, plan.text
        assert plan.json()["plan"]["params"] <= 0.05 * profile["model"]["total_params"]


def test_queued_jobs_cancel_join_and_hit_the_limit(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_queued_jobs": 2})
    with TestClient(create_app(limited, run_jobs=False)) as c:
        first = c.post("/v1/profiles", json=tiny_request())
        assert first.status_code == 202
        joined = c.post("/v1/profiles", json=tiny_request())
        assert joined.json()["id"] == first.json()["id"]
        assert c.post("/v1/profiles", json=tiny_request(hidden_size=96)).status_code == 202
        full = c.post("/v1/profiles", json=tiny_request(hidden_size=128))
        assert full.status_code == 429 and full.headers["retry-after"]
        assert full.headers["content-type"] == "application/problem+json"
        url = first.headers["location"]
        cancelled = c.delete(url)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert c.delete(url).json()["state"] == "cancelled"
        assert c.post("/v1/profiles", json=tiny_request(hidden_size=128)).status_code == 202
        assert c.get("/v1/jobs/nope").status_code == 404
        assert c.delete("/v1/jobs/nope").status_code == 404
        assert c.get("/v1/profiles/nope").status_code == 404
        assert c.get("/v1/profiles/nope/frontier").status_code == 404
        assert c.get("/metrics").text.count('peft_planner_jobs{state="queued"} 2.0') == 1


def test_cancelling_a_finished_job_conflicts(settings: Settings, client: TestClient) -> None:
    job_id = client.post("/v1/profiles", json=tiny_request()).json()["id"]
    sessions = session_factory(create_store_engine(settings.db))
    with sessions() as session:
        session.get(JobRow, job_id).state = "failed"
        session.commit()
    r = client.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 409 and "already failed" in r.json()["detail"]


def test_start_up_requeues_or_fails_jobs_of_instances_that_are_gone(settings: Settings) -> None:
    engine = create_store_engine(settings.db)
    from app.store import init_db

    init_db(engine)
    with session_factory(engine)() as session:
        for job_id, attempts, instance in (("again", 1, "dead"), ("gaveup", 2, None), ("busy", 1, "alive")):
            session.add(JobRow(id=job_id, state="running", cache_key=job_id, spec={"name": "x"},
                               options={}, attempts=attempts, claimed_by=f"{instance}-worker", instance=instance))
        session.commit()
    instances.register(engine, "alive")
    assert jobs.release_orphans(engine, "the service restarted", 2, instances.live(60, set())) == 2
    with session_factory(engine)() as session:
        again, gaveup, busy = (session.get(JobRow, i) for i in ("again", "gaveup", "busy"))
        assert again.state == "queued" and "re-queued" in again.error and again.instance is None
        assert gaveup.state == "failed" and "gave up after 2" in gaveup.error
        assert gaveup.finished_at is not None
        assert busy.state == "running" and busy.error is None


def test_a_running_job_can_be_cancelled(settings: Settings) -> None:
    big = tiny_request(num_hidden_layers=6, hidden_size=128, intermediate_size=512)
    big["options"] = {**OPTIONS, "ranks": [2, 4, 8, 16], "repeats": 3}
    with TestClient(create_app(settings)) as c:
        url = c.post("/v1/profiles", json=big).headers["location"]
        wait_for(c, url, ("running", "succeeded", "failed"))
        response = c.delete(url)
        if response.status_code == 409:
            pytest.skip("the job finished before it could be cancelled")
        assert response.json()["state"] == "cancelled"
        time.sleep(1.5)
        job = c.get(url).json()
        assert job["state"] == "cancelled" and job["profile_id"] is None


def _model_dir(root: Path, name: str, files: dict[str, str]) -> Path:
    path = root / name
    path.mkdir()
    for fname, text in files.items():
        (path / fname).write_text(text)
    return path


def test_model_directories_are_confined_and_safe(settings: Settings, client: TestClient) -> None:
    root = settings.models_root
    config = json.dumps(TINY_BERT)
    _model_dir(root, "good", {"config.json": config, "model.safetensors": ""})
    _model_dir(root, "pickled", {"config.json": config, "pytorch_model.bin": ""})
    _model_dir(root, "custom", {"config.json": json.dumps({**TINY_BERT, "auto_map": {}})})
    _model_dir(root.parent, "outside", {"config.json": config})
    (root / "link").symlink_to(root.parent / "outside")

    def status(path: str) -> int:
        r = client.post("/v1/profiles", json={"model": {"path": path}, "options": OPTIONS})
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json"
        return r.status_code

    assert status("good") == 202
    assert status(str(root / "good")) == 202
    for escaping in ("../outside", str(root.parent / "outside"), "link", "/etc"):
        assert status(escaping) == 403, escaping
    assert status("pickled") == 422
    assert status("custom") == 422
    assert status("missing") == 422
    r = client.post("/v1/profiles", json={"model": {"config": {**TINY_BERT, "auto_map": {}}}})
    assert r.status_code == 422 and "auto_map" in r.json()["detail"]
    r = client.post("/v1/profiles", json={"model": {"name": "no-such-model"}})
    assert r.status_code == 422 and "catalog" in r.json()["detail"]


def test_model_directories_need_a_models_root(settings: Settings) -> None:
    unset = settings.model_copy(update={"models_root": None})
    with TestClient(create_app(unset, run_jobs=False)) as c:
        r = c.post("/v1/profiles", json={"model": {"path": "good"}})
        assert r.status_code == 422 and "MODELS_ROOT" in r.json()["detail"]


def test_catalog_models_over_the_size_limit_are_refused(settings: Settings) -> None:
    small = settings.model_copy(update={"max_model_params": 1000})
    with TestClient(create_app(small, run_jobs=False)) as c:
        r = c.post("/v1/profiles", json={"model": {"name": "bert-base"}})
        assert r.status_code == 422 and "the limit is 1000" in r.json()["detail"]
