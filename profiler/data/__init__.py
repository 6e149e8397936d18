"""Datasets: uploaded JSONL/NPZ (validated) and the built-in Rotten Tomatoes snippets."""

from profiler.data.dataset import (
           Dataset,
           DatasetError,
           load_dataset,
           parse_dataset,
           parse_jsonl,
           parse_npz,
)
from profiler.data.rotten import rotten_tomatoes, rotten_tomatoes_splits

__all__ = ["Dataset", "DatasetError", "load_dataset", "parse_dataset", "parse_jsonl", "parse_npz",
           "rotten_tomatoes", "rotten_tomatoes_splits"]
