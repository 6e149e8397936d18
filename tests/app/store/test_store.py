"""The store on both backends: SQLite (the embedded default) and a real PostgreSQL server.

Tables and start-up migrations, job claims (also racing from many threads), ownership of
progress and results, recovery of jobs and Idempotency-Keys of dead instances, profiles.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text, update
from sqlalchemy.orm import Session

from app.idempotency import release_pending
from app.store import create_store_engine, init_db, instances, jobs, profiles
from app.store.migrate import add_missing_columns
from app.store.tables import IdempotencyRow, InstanceRow, JobRow


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store on a fresh SQLite file or a fresh PostgreSQL database."""
    db = str(tmp_path / "store.db") if request.param == "sqlite" else request.getfixturevalue("postgres_db")
    engine = create_store_engine(db)
    init_db(engine)
    yield engine
    engine.dispose()


def queue(engine: Engine, n: int) -> list[str]:
    """Queue `n` jobs, oldest first; returns their ids."""
    with Session(engine) as session:
        ids = [jobs.enqueue(session, {"name": f"m{i}"}, {}, f"key-{i}").id for i in range(n)]
        session.commit()
    return ids


def row(engine: Engine, job_id: str) -> JobRow:
    with Session(engine) as session:
        return session.get(JobRow, job_id)


def alive(engine: Engine, lease_s: float = 60) -> set[str]:
    """The ids the `instances.live` subquery gives now."""
    with Session(engine) as session:
        return set(session.scalars(instances.live(lease_s, instances.gone_here(engine))))


def test_tables_are_created_and_a_second_start_up_changes_nothing(engine: Engine) -> None:
    assert {"jobs", "profiles", "plans", "problems", "datasets", "idempotency_keys", "instances"} <= \
        set(inspect(engine).get_table_names())
    init_db(engine)
    with engine.begin() as connection:
        assert add_missing_columns(connection) == []


def test_columns_of_newer_versions_are_added_to_an_older_table(engine: Engine) -> None:
    with engine.begin() as connection:
        for column in ("kind", "result", "instance"):
            connection.execute(text(f"ALTER TABLE jobs DROP COLUMN {column}"))
    init_db(engine)
    assert {"kind", "result", "instance"} <= {c["name"] for c in inspect(engine).get_columns("jobs")}
    (job_id,) = queue(engine, 1)
    assert row(engine, job_id).kind == "profile"


def test_claims_take_the_oldest_queued_job_once(engine: Engine) -> None:
    first, second = queue(engine, 2)
    a, b = jobs.claim_next(engine, "w1", "i1"), jobs.claim_next(engine, "w2", "i2")
    assert (a.id, b.id) == (first, second)
    assert (a.state, a.claimed_by, a.instance, a.attempts) == ("running", "w1", "i1", 1)
    assert jobs.claim_next(engine, "w3", "i3") is None


def test_racing_claims_from_many_threads_take_every_job_exactly_once(engine: Engine) -> None:
    ids = queue(engine, 60)
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        while (job := jobs.claim_next(engine, worker, "i")) is not None:
            with lock:
                claimed.append((job.id, worker))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(job_id for job_id, _ in claimed)
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    assert all(row(engine, job_id).attempts == 1 for job_id in ids)
    assert len({worker for _, worker in claimed}) > 1  # the claims did race


def test_progress_and_results_only_while_the_claim_holds(engine: Engine) -> None:
    (job_id,) = queue(engine, 1)
    jobs.claim_next(engine, "w", "i")
    assert jobs.report_progress(engine, job_id, "w", 1, 4) and not jobs.report_progress(engine, job_id, "x", 2, 4)
    assert jobs.report_message(engine, job_id, "w", "probe 1/4") and jobs.still_owned(engine, job_id, "w")
    with Session(engine) as session:
        assert jobs.cancel(session, session.get(JobRow, job_id))
    assert not jobs.finish(engine, job_id, "w", state="succeeded", result={"x": 1})
    after = row(engine, job_id)
    assert (after.state, after.done, after.total, after.message, after.result) == ("cancelled", 1, 4, "probe 1/4", None)
    assert after.finished_at.tzinfo is not None


def test_a_dead_worker_and_the_instances_that_are_gone_give_their_jobs_back(engine: Engine) -> None:
    ids = queue(engine, 3)
    instances.register(engine, "alive")
    for worker, instance in (("w1", "alive"), ("w2", "dead"), ("w3", "alive")):
        jobs.claim_next(engine, worker, instance)
    assert jobs.release_worker(engine, "the worker died", 2, "w3") == 1
    assert jobs.release_orphans(engine, "gone", 2, instances.live(60, set())) == 1
    states = [(r.state, r.instance) for r in map(lambda i: row(engine, i), ids)]
    assert states == [("running", "alive"), ("queued", None), ("queued", None)]
    assert jobs.claim_next(engine, "w4", "alive").attempts == 2


def test_live_instances_beat_and_the_silent_ones_are_forgotten(engine: Engine) -> None:
    instances.register(engine, "me")
    instances.register(engine, "quiet")
    with Session(engine) as session:
        session.execute(update(InstanceRow).where(InstanceRow.id == "quiet")
                        .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)))
        session.add(InstanceRow(id="exited", host=socket.gethostname(), pid=2**22 + 1))
        session.commit()
    assert instances.gone_here(engine) == {"exited"}  # its pid is gone on this host
    assert alive(engine) == {"me"}
    instances.beat(engine, "quiet")
    assert alive(engine) == {"me", "quiet"}
    instances.retire(engine, "quiet")
    assert instances.forget_dead(engine, instances.live(60, {"exited"})) == 1
    with Session(engine) as session:
        assert set(session.scalars(select(InstanceRow.id))) == {"me"}


def test_unanswered_keys_are_released_only_for_instances_that_are_gone(engine: Engine) -> None:
    instances.register(engine, "alive")
    with Session(engine) as session:
        for key, instance, status in (("a", "alive", None), ("b", "dead", None), ("c", None, None),
                                      ("d", "dead", 201)):
            session.add(IdempotencyRow(scope="POST /v1/plans", key=key, request_hash="h", instance=instance,
                                       status_code=status, body=None if status is None else "{}"))
        session.commit()
    assert release_pending(engine, instances.live(60, set())) == 2
    with Session(engine) as session:
        assert set(session.scalars(select(IdempotencyRow.key))) == {"a", "d"}


def test_a_profile_stored_twice_under_one_key_is_stored_once(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        first = profiles.save(session, "k", "{}", "m", 1, 1)
        again = profiles.save(session, "k", '{"other": 1}', "m", 1, 1)
    assert again.id == first.id and again.body == "{}"
