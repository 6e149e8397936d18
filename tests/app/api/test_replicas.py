"""Two `peft-planner serve` replicas on one PostgreSQL database: exactly-once jobs, a replica killed mid-job.

The trivial job kind is a `prior` gains job (no training: it reads a stored profile and stores it
again with the documented default gains). Exactly once is read three ways: the job's claim count,
the `running job <id>` lines the worker processes of both replicas log, and one stored profile per job.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.store import create_store_engine, init_db, jobs
from app.store.tables import JobRow, PlanRow, ProfileRow
from tests.app.service_helpers import store_profile, synthetic_profile
from tests.servers import ROOT, free_port, kill, serve_command, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
LEASE_S = 3.0
FINAL = ("succeeded", "failed", "cancelled")
SLOW_JOB = {
    "model": {"config": {"model_type": "bert", "hidden_size": 128, "num_hidden_layers": 6,
                         "num_attention_heads": 2, "intermediate_size": 512, "vocab_size": 128}},
    "options": {"methods": ["lora", "bitfit"], "ranks": [2, 4, 8, 16], "batch_size": 1,
                "seq_len": 8, "device": "cpu", "repeats": 3},
}


def replica(db: str, log: Path, workers: int = 1):
    """Start a replica on `db` (a short instance lease) logging to `log`; the process and its URL."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PEFT_PLANNER_INSTANCE_LEASE_S": str(LEASE_S), "PEFT_PLANNER_WORKER_POLL_S": "0.05"}
    return start(serve_command(free_port(), db, "--workers", str(workers)), env=env, log=log, timeout_s=120)


def wait_workers(*logs: Path, timeout: float = 120) -> None:
    """Return once the worker process of every replica logging to `logs` is taking jobs."""
    deadline = time.monotonic() + timeout
    while not all("taking jobs" in log.read_text() for log in logs):
        assert time.monotonic() < deadline, "a replica's worker did not start"
        time.sleep(0.1)


def queue_prior_jobs(engine: Engine, profile_id: str, n: int) -> list[str]:
    """Queue `n` prior gains jobs on the profile (straight into the table: past the API's queue limit)."""
    with Session(engine) as session:
        ids = [jobs.enqueue(session, {"source": "prior", "profile_id": profile_id, "workers": 1}, {},
                            f"prior-{i}", kind="gains").id for i in range(n)]
        session.commit()
    return ids


def wait_all(engine: Engine, ids: list[str], timeout: float) -> list[JobRow]:
    """The jobs' rows once every one is finished; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            rows = list(session.scalars(select(JobRow).where(JobRow.id.in_(ids))))
        if all(r.state in FINAL for r in rows):
            return rows
        assert time.monotonic() < deadline, Counter(r.state for r in rows)
        time.sleep(0.2)


def job_row(engine: Engine, job_id: str) -> JobRow:
    """The job's row as stored now."""
    with Session(engine) as session:
        return session.get(JobRow, job_id)


def runs_logged(*logs: Path) -> Counter[str]:
    """How many times the worker processes logged starting each job."""
    return Counter(m for log in logs for m in re.findall(r"running job ([0-9a-f]{32})", log.read_text()))


def pid_of(instance: str | None) -> int | None:
    """The service pid in an instance id (`host:pid:random`)."""
    return None if instance is None else int(instance.split(":")[1])


def test_two_replicas_run_200_queued_jobs_exactly_once(postgres_db: str, tmp_path: Path) -> None:
    engine = create_store_engine(postgres_db)
    init_db(engine)
    profile_id = store_profile(postgres_db, synthetic_profile(gains=False))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = []
    try:
        for log in logs:
            procs.append(replica(postgres_db, log))
        wait_workers(*logs)
        ids = queue_prior_jobs(engine, profile_id, 200)
        (_, url_a), (_, url_b) = procs
        plan = {"problem": {"candidates": [{"id": "a", "method": "lora", "gain": 3.0, "params": 10, "flops": 5.0}],
                            "budget": {"params": 12, "flops": 10}}}
        key = {"Idempotency-Key": "one-plan"}
        answers = [httpx.post(f"{url}/v1/plans", json=plan, headers=key, timeout=30) for url in (url_a, url_b)]
        rows = wait_all(engine, ids, timeout=300)
    finally:
        for proc, _ in procs:
            stop(proc)
    assert [r.status_code for r in answers] == [201, 201], answers[0].text
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert Counter(r.state for r in rows) == {"succeeded": 200}
    assert {r.attempts for r in rows} == {1}
    assert runs_logged(*logs) == dict.fromkeys(ids, 1)
    by_replica = Counter(pid_of(r.instance) for r in rows)
    assert set(by_replica) == {proc.pid for proc, _ in procs}, by_replica  # both took jobs
    assert len({r.profile_id for r in rows}) == 200
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ProfileRow)) == 201
        assert session.scalar(select(func.count()).select_from(PlanRow)) == 1
    engine.dispose()


def test_a_job_of_a_replica_killed_mid_job_is_finished_by_the_other(postgres_db: str, tmp_path: Path) -> None:
    # Both replicas are taking jobs before the slow job is queued, and the one that claims it is
    # killed the moment it runs: the kill cannot come after the job has finished on its own.
    engine = create_store_engine(postgres_db)
    init_db(engine)
    profile_id = store_profile(postgres_db, synthetic_profile(gains=False))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = []
    try:
        for log in logs:
            procs.append(replica(postgres_db, log))
        wait_workers(*logs)
        slow_id = httpx.post(f"{procs[0][1]}/v1/profiles", json=SLOW_JOB).json()["id"]
        deadline = time.monotonic() + 60
        while (row := job_row(engine, slow_id)).state == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert row.state == "running", row.state
        holder = pid_of(row.instance)
        victim, survivor = sorted((proc for proc, _ in procs), key=lambda proc: proc.pid != holder)
        kill(victim)  # SIGKILL, its worker processes with it
        ids = queue_prior_jobs(engine, profile_id, 20)
        rows = {r.id: r for r in wait_all(engine, [slow_id, *ids], timeout=240)}
    finally:
        for proc, _ in procs:
            kill(proc)
    slow = rows.pop(slow_id)
    assert slow.state == "succeeded" and slow.attempts == 2 and slow.profile_id, slow.error
    assert pid_of(slow.instance) == survivor.pid
    assert all(r.state == "succeeded" for r in rows.values())
    assert runs_logged(*logs)[slow_id] == 2
    engine.dispose()
