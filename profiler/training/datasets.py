"""Datasets for gain estimation and fine-tuning: labelled text or prompt/completion text (JSONL), or arrays (NPZ).

A `Dataset` is one of three kinds, told apart by its JSONL rows:

* `text`: `{"text", "label"}` rows (or an NPZ's `x`, kind `array`): `texts` or `x` with integer class
  indices `y` into `classes` (the original labels, sorted), for a classification task;
* `completion`: `{"prompt", "completion"}` rows, for a causal-LM task trained on the completions;
* `corpus`: `{"text"}` rows without labels, for a causal-LM task trained on every token.

`Dataset.task` says which task a dataset trains. Uploaded bytes are parsed by `parse_dataset`, which
rejects anything malformed with a one-line `DatasetError` naming the line or field.
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from profiler.errors import ProfileError
from profiler.jsontext import JsonTextError, loads

MAX_EXAMPLES = 200_000
MAX_TEXT_CHARS = 20_000
MAX_CLASSES = 1_000
MIN_EXAMPLES = 4


class DatasetError(ProfileError):
    """An uploaded dataset that cannot be used; the message names the line or field."""


Kind = Literal["text", "array", "completion", "corpus"]
TaskKind = Literal["classification", "causal_lm"]


@dataclass(frozen=True)
class Dataset:
    """Examples: texts or array rows with class indices `y` (int64) into `classes` (classification), or
    `completions` with their `prompts` (None for a corpus: every token is trained) for a causal LM."""

    y: np.ndarray | None
    classes: list[str]
    texts: list[str] | None = None
    x: np.ndarray | None = None
    prompts: list[str] | None = None
    completions: list[str] | None = None

    @property
    def kind(self) -> Kind:
        """"text" (labelled JSONL), "array" (NPZ), "completion" (prompt/completion JSONL) or "corpus" (JSONL texts)."""
        if self.completions is not None:
            return "completion" if self.prompts is not None else "corpus"
        return "text" if self.texts is not None else "array"

    @property
    def task(self) -> TaskKind:
        """The task the dataset trains: classification (labels) or causal_lm (completions)."""
        return "causal_lm" if self.completions is not None else "classification"

    def __len__(self) -> int:
        return len(self.completions) if self.completions is not None else int(self.y.shape[0])

    def subset(self, index: np.ndarray | list[int]) -> Dataset:
        """The examples at `index`, same classes."""
        index = np.asarray(index, dtype=np.int64)

        def pick(values: list[str] | None) -> list[str] | None:
            return [values[i] for i in index] if values is not None else None

        return Dataset(self.y[index] if self.y is not None else None, self.classes, pick(self.texts),
                       self.x[index] if self.x is not None else None, pick(self.prompts), pick(self.completions))

    def split(self, validation: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """(train, validation) by a seeded permutation; `validation` is a count or a fraction."""
        n = len(self)
        n_val = round(validation * n) if isinstance(validation, float) else int(validation)
        if not 1 <= n_val < n:
            raise DatasetError(f"cannot hold out {n_val} of {n} examples for validation")
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(order[n_val:])), self.subset(np.sort(order[:n_val]))

    def summary(self) -> dict[str, Any]:
        """Kind, task, size, and classes with per-class counts or completion lengths in characters (JSON-ready)."""
        out: dict[str, Any] = {"kind": self.kind, "task": self.task, "examples": len(self)}
        if self.completions is not None:
            lengths = [len(c) for c in self.completions]
            out["completion_chars"] = {"min": min(lengths), "max": max(lengths),
                                       "mean": round(sum(lengths) / len(lengths), 1)}
            return out
        assert self.y is not None
        out |= {"classes": self.classes,
                "class_counts": [int(c) for c in np.bincount(self.y, minlength=len(self.classes))]}
        if self.x is not None:
            out["shape"] = list(self.x.shape[1:])
        return out


def _classes(labels: list[Any]) -> tuple[np.ndarray, list[str]]:
    numeric = all(isinstance(v, int | np.integer) for v in labels)
    names = [str(v) for v in sorted(set(labels))] if numeric else sorted({str(v) for v in labels})
    if len(names) < 2:
        raise DatasetError(f"need at least 2 distinct labels, got {len(names)}")
    if len(names) > MAX_CLASSES:
        raise DatasetError(f"{len(names)} distinct labels; the limit is {MAX_CLASSES}")
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[str(v)] for v in labels], dtype=np.int64), names


def _check_size(n: int) -> None:
    if n < MIN_EXAMPLES:
        raise DatasetError(f"{n} examples; need at least {MIN_EXAMPLES}")
    if n > MAX_EXAMPLES:
        raise DatasetError(f"{n} examples; the limit is {MAX_EXAMPLES}")


SHAPE_NAMES = {"text": '{"text", "label"}', "completion": '{"prompt", "completion"}', "corpus": '{"text"} (no label)'}
ROW_SHAPES = f"{SHAPE_NAMES['text']} (classification), {SHAPE_NAMES['completion']} or {SHAPE_NAMES['corpus']} (causal LM)"


def _row_shape(row: dict[str, Any]) -> Kind:
    if "prompt" in row or "completion" in row:
        return "completion"
    return "text" if "label" in row else "corpus"


def _string(row: dict[str, Any], key: str, number: int) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"line {number}: \"{key}\" must be a non-empty string")
    if len(value) > MAX_TEXT_CHARS:
        raise DatasetError(f"line {number}: {key} of {len(value)} characters; the limit is {MAX_TEXT_CHARS}")
    return value


def parse_jsonl(data: bytes) -> Dataset:
    """One JSON object per line, every line of one shape (`ROW_SHAPES`): a non-empty string "text" and a string
    or integer "label"; non-empty strings "prompt" and "completion"; or a non-empty string "text" alone."""
    try:
        body = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    shape: Kind | None = None
    columns: dict[str, list[Any]] = defaultdict(list)
    examples = 0
    for number, line in enumerate(body.split("\n"), 1):  # JSON Lines: only "\n" ends a line (not U+2028)
        if not line.strip():
            continue
        try:
            row = loads(line)
        except JsonTextError as exc:
            raise DatasetError(f"line {number}: {exc}") from None
        if not isinstance(row, dict):
            raise DatasetError(f"line {number}: expected an object: {ROW_SHAPES}")
        this = _row_shape(row)
        if shape is not None and this != shape:
            raise DatasetError(f"line {number}: a {SHAPE_NAMES[this]} row after {SHAPE_NAMES[shape]} rows; "
                               "every line has the same keys")
        shape = this
        if this == "completion":
            columns["prompts"].append(_string(row, "prompt", number))
            columns["completions"].append(_string(row, "completion", number))
        else:
            columns["texts"].append(_string(row, "text", number))
        if this == "text":
            label = row.get("label")
            if isinstance(label, bool) or not isinstance(label, str | int) or (isinstance(label, str) and not label):
                raise DatasetError(f"line {number}: \"label\" must be a non-empty string or an integer")
            columns["labels"].append(label)
        examples += 1
        if examples > MAX_EXAMPLES:
            _check_size(examples)
    _check_size(examples)
    if shape == "completion":
        return Dataset(None, [], prompts=columns["prompts"], completions=columns["completions"])
    if shape == "corpus":
        return Dataset(None, [], completions=columns["texts"])
    y, classes = _classes(columns["labels"])
    return Dataset(y, classes, texts=columns["texts"])


def parse_npz(data: bytes) -> Dataset:
    """A NumPy .npz with a float array `x` (examples on axis 0) and a 1-D integer array `y`."""
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"not a readable .npz archive: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy array loads too
        raise DatasetError("not an .npz archive (a single .npy array?): save x and y with numpy.savez")
    with archive:
        missing = {"x", "y"} - set(archive.files)
        if missing:
            raise DatasetError(f"the .npz lacks array(s) {sorted(missing)} (has {sorted(archive.files)})")
        try:
            x, y = archive["x"], archive["y"]
        except ValueError as exc:
            raise DatasetError(f"cannot read x/y: {exc}") from None
    if x.dtype.kind not in "fiu" or x.ndim < 2:
        raise DatasetError(f"x must be a numeric array with examples on axis 0 and features after (got {x.dtype}, {x.ndim}-D)")
    if y.dtype.kind not in "iub" or y.ndim != 1:
        raise DatasetError(f"y must be a 1-D integer array (got {y.dtype}, {y.ndim}-D)")
    if x.shape[0] != y.shape[0]:
        raise DatasetError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
    if 0 in x.shape[1:]:
        raise DatasetError(f"x has an empty feature axis (shape {list(x.shape)})")
    if y.size and y.dtype.kind == "u" and int(y.max()) > np.iinfo(np.int64).max:
        raise DatasetError(f"y holds {int(y.max())}, beyond the int64 range of labels")
    _check_size(int(y.shape[0]))
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError("x contains NaN or infinite values")
    labels, classes = _classes(y.astype(np.int64).tolist())
    return Dataset(labels, classes, x=x)


def parse_dataset(data: bytes, fmt: Literal["jsonl", "npz"]) -> Dataset:
    """Parse uploaded bytes in format `fmt`; DatasetError if invalid."""
    return parse_jsonl(data) if fmt == "jsonl" else parse_npz(data)


def load_dataset(path: str) -> Dataset:
    """Read a .jsonl or .npz file from disk."""
    fmt: Literal["jsonl", "npz"] = "npz" if path.endswith(".npz") else "jsonl"
    with open(path, "rb") as f:
        return parse_dataset(f.read(), fmt)
