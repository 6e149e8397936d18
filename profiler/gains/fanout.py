"""Jobs that train, as independent runs between a prepare step and a fold.

A `FanOut` lists its runs (each one short fine-tune, `Run`) and folds their results, in run order,
into what the job reports. Whatever the fan-out needs before the runs (the head-only baseline, the
gradient scores) is computed when it is made. `run_here` trains the runs in this process or in forked
workers; the Ray runner trains one Ray task per run and calls the same fold, so both report the same.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

from profiler.methods.apply import apply_plan
from profiler.training.finetune import TrainConfig, TrainResult, finetune
from profiler.training.task import Task

T = TypeVar("T")


def train_plan(task: Task, candidate_ids: list[str], config: TrainConfig) -> TrainResult:
    """Fine-tune a fresh classifier (head and adapter initialization seeded by `config.seed`) with the given
    candidates attached: the same run in any process (LoRA draws its initialization from torch's global
    generator, which is seeded here and restored after)."""
    model = task.model(config.seed)
    sample = task.train.batch(torch.arange(2))[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        applied = apply_plan(model.encoder, candidate_ids, sample)
    return finetune(model, applied.by_method(), task.train, task.validation, config)


def train_full(task: Task, config: TrainConfig) -> TrainResult:
    """Fine-tune every encoder parameter and a fresh head (the ceiling of any plan) with `config`."""
    model = task.model(config.seed)
    return finetune(model, {"full": list(model.encoder.parameters())}, task.train, task.validation, config)


@dataclass(frozen=True)
class Run:
    """One fine-tune: its label (for progress and errors), the candidates attached (None: full fine-tuning)."""

    label: str
    candidates: list[str] | None
    config: TrainConfig


def train(task: Task, run: Run) -> TrainResult:
    """Train one run: its candidates and a fresh head, or every encoder parameter for full fine-tuning."""
    return train_full(task, run.config) if run.candidates is None else train_plan(task, run.candidates, run.config)


@dataclass(frozen=True)
class FanOut(Generic[T]):
    """Independent runs, and the fold of their results (in run order, with the runs' wall time in s)."""

    runs: list[Run]
    fold: Callable[[list[TrainResult], float], T]


_TASK: Task | None = None  # the task inherited by forked workers


def _train_in_worker(args: tuple[Run, int]) -> TrainResult:
    run, threads = args
    torch.set_num_threads(threads)
    assert _TASK is not None
    return train(_TASK, run)


def train_runs(task: Task | None, runs: list[Run], workers: int = 1,
               progress: Callable[[int, int], None] | None = None) -> list[TrainResult]:
    """Train every run, in order here or in `workers` forked processes (each a share of the CPU threads)."""
    if not runs:
        return []
    assert task is not None, "runs need a task"
    results: list[TrainResult] = []
    if workers <= 1:
        for run in runs:
            results.append(train(task, run))
            if progress:
                progress(len(results), len(runs))
        return results
    global _TASK
    _TASK = task
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for result in pool.map(_train_in_worker, [(run, threads) for run in runs]):
                results.append(result)
                if progress:
                    progress(len(results), len(runs))
    finally:
        _TASK = None
    return results


def run_here(task: Task | None, fanout: FanOut[T], workers: int = 1,
             progress: Callable[[int, int], None] | None = None) -> T:
    """The fan-out's folded result, its runs trained by `train_runs`."""
    start = time.perf_counter()
    results = train_runs(task, fanout.runs, workers, progress)
    return fanout.fold(results, time.perf_counter() - start)
