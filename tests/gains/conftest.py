"""Tiny random models and data for the gain, apply and export tests (fast, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from profiler.training.datasets import Dataset
from profiler.training.task import Task, make_task
from tests.profiler.conftest import TINY_BERT, real_model

# 12 layers, so that layer 1 and layer 11 paths test peft's regex pitfalls.
DEEP_BERT = {"model_type": "bert", "num_hidden_layers": 12, "hidden_size": 16, "num_attention_heads": 2,
             "intermediate_size": 24, "vocab_size": 100}


class Tokenizer:
    """Words -> ids by hashing (a stand-in with the transformers call signature)."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def __call__(self, texts: list[str], truncation: bool, max_length: int, padding: str,
                 return_tensors: str) -> dict[str, torch.Tensor]:
        ids = torch.zeros(len(texts), max_length, dtype=torch.long)
        mask = torch.zeros(len(texts), max_length, dtype=torch.long)
        for i, text in enumerate(texts):
            words = [2 + sum(map(ord, w)) % (self.vocab - 2) for w in text.split()][:max_length]
            ids[i, :len(words)] = torch.tensor(words)
            mask[i, :len(words)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def toy_texts(n: int, seed: int = 0) -> Dataset:
    """Sentences whose label is whether they contain 'good' more than 'bad'."""
    rng = np.random.default_rng(seed)
    words = ["film", "plot", "actor", "scene", "music", "story"]
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        body = list(rng.choice(words, 5)) + ["good" if label else "bad"] * 2
        rng.shuffle(body)
        texts.append(" ".join(body))
        labels.append(label)
    return Dataset(np.array(labels), ["0", "1"], texts=texts)


@pytest.fixture()
def tiny_task() -> Task:
    encoder = real_model(TINY_BERT)
    return make_task("toy", encoder, Tokenizer(TINY_BERT["vocab_size"]), toy_texts(64), toy_texts(32, 1), max_len=12)


@pytest.fixture()
def deep_bert() -> torch.nn.Module:
    return real_model(DEEP_BERT)
