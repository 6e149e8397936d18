"""Labelled datasets for gain estimation and fine-tuning: text (JSONL) or arrays (NPZ), validated.

A `Dataset` holds either `texts` (one string per example) or `x` (an array, examples on axis 0),
plus integer class indices `y` into `classes` (the original labels, sorted). Uploaded bytes are
parsed by `parse_dataset`, which rejects anything malformed with a one-line `DatasetError`.
"""

from __future__ import annotations

import io
import zipfile
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


@dataclass(frozen=True)
class Dataset:
    """Examples (texts or array rows) with class indices `y` (int64) into `classes`."""

    y: np.ndarray
    classes: list[str]
    texts: list[str] | None = None
    x: np.ndarray | None = None

    @property
    def kind(self) -> Literal["text", "array"]:
        """"text" for JSONL text data, "array" for NPZ arrays."""
        return "text" if self.texts is not None else "array"

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: np.ndarray | list[int]) -> Dataset:
        """The examples at `index`, same classes."""
        index = np.asarray(index, dtype=np.int64)
        texts = [self.texts[i] for i in index] if self.texts is not None else None
        x = self.x[index] if self.x is not None else None
        return Dataset(self.y[index], self.classes, texts, x)

    def split(self, validation: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """(train, validation) by a seeded permutation; `validation` is a count or a fraction."""
        n = len(self)
        n_val = round(validation * n) if isinstance(validation, float) else int(validation)
        if not 1 <= n_val < n:
            raise DatasetError(f"cannot hold out {n_val} of {n} examples for validation")
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(order[n_val:])), self.subset(np.sort(order[:n_val]))

    def summary(self) -> dict[str, Any]:
        """Kind, size, classes and per-class counts (JSON-ready)."""
        counts = np.bincount(self.y, minlength=len(self.classes))
        out: dict[str, Any] = {"kind": self.kind, "examples": len(self), "classes": self.classes,
                               "class_counts": [int(c) for c in counts]}
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


def parse_jsonl(data: bytes) -> Dataset:
    """One JSON object per line with a non-empty string "text" and a string or integer "label"."""
    try:
        body = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    texts, labels = [], []
    for number, line in enumerate(body.split("\n"), 1):  # JSON Lines: only "\n" ends a line (not U+2028)
        if not line.strip():
            continue
        try:
            row = loads(line)
        except JsonTextError as exc:
            raise DatasetError(f"line {number}: {exc}") from None
        if not isinstance(row, dict):
            raise DatasetError(f"line {number}: expected an object with \"text\" and \"label\"")
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"line {number}: \"text\" must be a non-empty string")
        if len(text) > MAX_TEXT_CHARS:
            raise DatasetError(f"line {number}: text of {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
        if isinstance(label, bool) or not isinstance(label, str | int) or (isinstance(label, str) and not label):
            raise DatasetError(f"line {number}: \"label\" must be a non-empty string or an integer")
        texts.append(text)
        labels.append(label)
        if len(texts) > MAX_EXAMPLES:
            _check_size(len(texts))
    _check_size(len(texts))
    y, classes = _classes(labels)
    return Dataset(y, classes, texts=texts)


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
