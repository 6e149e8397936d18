"""Suite-wide settings and fixtures: on CI (CI=true) hypothesis draws the same examples every run; tiny models."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

from profiler.training.task import Task, make_task
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
