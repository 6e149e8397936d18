"""Job kinds without running them: databases of older versions, cancelling, queueing under the Ray runner."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from app.jobs.kinds.base import Watch
from app.main import create_app
from app.settings import Settings
from app.store import create_store_engine, init_db, jobs
from app.store.migrate import add_missing_columns
from app.store.tables import JobRow
from profiler.errors import Cancelled


def test_a_database_without_the_new_job_columns_is_migrated(settings: Settings) -> None:
    engine = create_store_engine(settings.db)
    init_db(engine)
    with engine.begin() as connection:  # as made by a version before job kinds
        for column in ("kind", "message", "result"):
            connection.execute(text(f"ALTER TABLE jobs DROP COLUMN {column}"))
        connection.execute(text(
            "INSERT INTO jobs (id, state, cache_key, spec, options, done, cached, attempts, created_at) "
            """VALUES ('old', 'succeeded', 'k', '{"name": "bert-tiny"}', '{}', 0, 0, 1, '2026-01-01 00:00:00')"""))
    assert {"kind", "result"}.isdisjoint(c["name"] for c in inspect(engine).get_columns("jobs"))
    with TestClient(create_app(settings, run_jobs=False)) as c:
        job = c.get("/v1/jobs/old").json()
        assert job["kind"] == "profile" and job["model"] == {"name": "bert-tiny"}
        assert job["result"] is None and job["request"] is None and job["message"] is None
    with engine.begin() as connection:
        assert add_missing_columns(connection) == []  # idempotent: nothing left to add
    assert {c.name for c in JobRow.__table__.columns} <= {c["name"] for c in inspect(engine).get_columns("jobs")}
    engine.dispose()


def test_gains_jobs_queue_join_and_cancel_like_profiling_jobs(client: TestClient, profile_id: str) -> None:
    url = f"/v1/profiles/{profile_id}/gains"
    first = client.post(url, json={"source": "prior"})
    assert first.status_code == 202 and first.json()["state"] == "queued"
    assert first.headers["location"] == f"/v1/jobs/{first.json()['id']}"
    assert client.post(url, json={"source": "prior"}).json()["id"] == first.json()["id"]  # joined
    cancelled = client.delete(first.headers["location"]).json()
    assert cancelled["state"] == "cancelled" and cancelled["kind"] == "gains"
    assert client.post(url, json={"source": "prior"}).json()["id"] != first.json()["id"]


def test_the_ray_runner_takes_gains_jobs(settings: Settings, profile_id: str) -> None:
    with TestClient(create_app(settings.model_copy(update={"jobs": "ray"}), run_jobs=False)) as c:
        r = c.post(f"/v1/profiles/{profile_id}/gains", json={"source": "prior"})
        assert r.status_code == 202 and r.json()["kind"] == "gains" and r.json()["state"] == "queued"


def test_a_progress_note_is_a_cancellation_checkpoint(settings: Settings) -> None:
    engine = create_store_engine(settings.db)
    init_db(engine)
    with Session(engine) as session:
        job_id = jobs.enqueue(session, {"profile_id": "p"}, {}, "key", kind="gains").id
        session.commit()
    job = jobs.claim_next(engine, "w")
    assert job is not None and job.id == job_id and job.kind == "gains"
    watch = Watch(engine, job, "w", stop=lambda: False)
    watch.note("probe 1/3")
    with Session(engine) as session:
        assert session.get(JobRow, job_id).message == "probe 1/3"
        jobs.cancel(session, session.get(JobRow, job_id))
    with pytest.raises(Cancelled):
        watch.note("probe 2/3")
    engine.dispose()
