"""One local Ray instance (2 CPUs) per test module; settings and a job store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.settings import Settings
from app.store import create_store_engine, init_db


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    """A local Ray instance with 2 CPUs, started once per module."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             namespace="peft-planner-tests")
    yield
    ray.shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Service settings for the Ray runner on a fresh database."""
    return Settings(db=str(tmp_path / "service.db"), jobs="ray", worker_poll_s=0.05)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """The job store's engine, tables created."""
    engine = create_store_engine(settings.db)
    init_db(engine)
    yield engine
    engine.dispose()
