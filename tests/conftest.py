"""Suite-wide settings and fixtures: on CI (CI=true) hypothesis draws the same examples every run; tiny models;
a PostgreSQL server (started once, when a test asks for it)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from hypothesis import settings

from profiler.training.task import Task, make_task
from tests.postgres import fresh_database, missing_reason, postgres_server
from tests.tiny import DEEP_BERT, TINY_BERT, Tokenizer, real_model, toy_texts

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def bert() -> torch.nn.Module:
    """TINY_BERT with random weights."""
    return real_model(TINY_BERT)


@pytest.fixture()
def deep_bert() -> torch.nn.Module:
    """DEEP_BERT (12 layers) with random weights."""
    return real_model(DEEP_BERT)


@pytest.fixture()
def tiny_task() -> Task:
    """A classification task: TINY_BERT and the stand-in tokenizer on 64 / 32 toy sentences."""
    encoder = real_model(TINY_BERT)
    return make_task("toy", encoder, Tokenizer(TINY_BERT["vocab_size"]), toy_texts(64), toy_texts(32, 1), max_len=12)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The URL of a PostgreSQL server started for the session; skips (with the reason) where it cannot run."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_db(postgres: str) -> Iterator[str]:
    """The URL of a fresh database on the session's PostgreSQL server."""
    with fresh_database(postgres) as url:
        yield url
