"""Probes: a short fine-tune of each candidate (with the task head) against the head-only baseline.

The expensive, honest source: every probe trains its candidate (or a bundle of candidates, for
calibration) plus a fresh head with the same
seed, steps, batches and learning rates as the baseline, and its gain is the difference of the two
validation accuracies, in accuracy points. Seeds, steps and both accuracies are recorded. With
`workers` > 1 probes run in forked processes, each with its share of the CPU threads.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import torch
from pydantic import BaseModel

from profiler.gains.estimate import GainEstimate
from profiler.methods.apply import apply_plan
from profiler.training.finetune import TrainConfig, TrainResult, finetune
from profiler.training.task import Task


class ProbeResult(BaseModel):
    """One probe: the run of its candidates (usually one) and the baseline it is compared with."""

    candidates: list[str]
    run: TrainResult
    baseline_accuracy: float
    baseline_loss: float

    @property
    def points(self) -> float:
        """Validation accuracy gain over head only, in accuracy points (may be negative)."""
        return 100.0 * (self.run.accuracy - self.baseline_accuracy)

    @property
    def loss_decrease(self) -> float:
        """Validation cross-entropy decrease over head only, in nats (a less noisy companion of `points`)."""
        return self.baseline_loss - self.run.val_loss

    def estimate(self) -> GainEstimate:
        """As a gain estimate (negative gains floored at 0; the raw value stays in the details)."""
        return GainEstimate(gain=max(0.0, self.points), source="probe", details={
            "points": self.points, "accuracy": self.run.accuracy, "baseline_accuracy": self.baseline_accuracy,
            "val_loss_decrease": self.loss_decrease,
            "steps": self.run.steps, "batch_size": self.run.batch_size, "seed": self.run.seed, "lr": self.run.lr})


def train_plan(task: Task, candidate_ids: list[str], config: TrainConfig) -> TrainResult:
    """Fine-tune a fresh classifier (head seeded by `config.seed`) with the given candidates attached."""
    model = task.classifier(config.seed)
    sample = task.train.batch(torch.arange(2))[0]
    applied = apply_plan(model.encoder, candidate_ids, sample)
    return finetune(model, applied.by_method(), task.train, task.validation, config)


def train_full(task: Task, config: TrainConfig) -> TrainResult:
    """Fine-tune every encoder parameter and a fresh head (the ceiling of any plan) with `config`."""
    model = task.classifier(config.seed)
    return finetune(model, {"full": list(model.encoder.parameters())}, task.train, task.validation, config)


_TASK: Task | None = None  # the task inherited by forked probe workers


def _probe_in_worker(args: tuple[list[str], TrainConfig, int]) -> TrainResult:
    candidates, config, threads = args
    torch.set_num_threads(threads)
    assert _TASK is not None
    return train_plan(_TASK, candidates, config)


def probe_gains(task: Task, probes: dict[str, list[str]], config: TrainConfig, workers: int = 1,
                baseline: TrainResult | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict[str, ProbeResult]:
    """Run each probe (name -> candidate ids; `{cid: [cid]}` for single candidates).

    `baseline` (a head-only run with `config`) is trained when not given.
    """
    baseline = baseline or train_plan(task, [], config)
    results: dict[str, TrainResult] = {}
    names = list(probes)
    if workers <= 1:
        for done, name in enumerate(names, 1):
            results[name] = train_plan(task, probes[name], config)
            if progress:
                progress(done, len(names))
    else:
        global _TASK
        _TASK = task
        threads = max(1, torch.get_num_threads() // workers)
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        try:
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                jobs = [(probes[name], config, threads) for name in names]
                for done, (name, run) in enumerate(zip(names, pool.map(_probe_in_worker, jobs), strict=True), 1):
                    results[name] = run
                    if progress:
                        progress(done, len(names))
        finally:
            _TASK = None
    return {name: ProbeResult(candidates=probes[name], run=run, baseline_accuracy=baseline.accuracy,
                              baseline_loss=baseline.val_loss) for name, run in results.items()}


def probe_every_candidate(task: Task, candidate_ids: list[str], config: TrainConfig, workers: int = 1,
                          progress: Callable[[str], None] | None = None) -> dict[str, GainEstimate]:
    """The `probe` estimate of every candidate, each trained alone (accuracy points over head only, >= 0)."""
    say = progress or (lambda message: None)
    say("training the head-only baseline")
    results = probe_gains(task, {cid: [cid] for cid in candidate_ids}, config, workers,
                          progress=lambda done, total: say(f"probe {done}/{total}"))
    return {cid: results[cid].estimate() for cid in candidate_ids}
