"""Fixtures: a fresh service per test on its own SQLite file, and stored profiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.app.service_helpers import store_profile, synthetic_profile


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh database, with a models root."""
    root = tmp_path / "models"
    root.mkdir()
    return Settings(db=str(tmp_path / "service.db"), models_root=root, worker_poll_s=0.05)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of an app without job workers (jobs stay queued)."""
    with TestClient(create_app(settings, run_jobs=False)) as c:
        yield c


@pytest.fixture
def profile_id(settings: Settings, client: TestClient) -> str:
    """The id of a stored synthetic profile with gains."""
    return store_profile(settings.db, synthetic_profile())
