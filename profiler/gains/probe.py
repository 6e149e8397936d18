"""Probes: a short fine-tune of each candidate (with the task head) against the head-only baseline.

The expensive, honest source: every probe trains its candidate (or a bundle of candidates, for
calibration) plus a fresh head with the same
seed, steps, batches and learning rates as the baseline, and its gain is the difference of the two
validation accuracies, in accuracy points. Seeds, steps and both accuracies are recorded. Probes are
the runs of a `fanout.FanOut`: with `workers` > 1 they run in forked processes, each with its share of
the CPU threads; on the Ray runner, one Ray task each.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from profiler.gains.estimate import GainEstimate
from profiler.gains.fanout import FanOut, Run, train_plan
from profiler.training.finetune import TrainConfig, TrainResult
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


def probed(probes: dict[str, list[str]], runs: list[TrainResult], baseline: TrainResult) -> dict[str, ProbeResult]:
    """Each probe (name -> candidate ids, in the order of `runs`) paired with the head-only baseline."""
    return {name: ProbeResult(candidates=candidates, run=run, baseline_accuracy=baseline.accuracy,
                              baseline_loss=baseline.val_loss)
            for (name, candidates), run in zip(probes.items(), runs, strict=True)}


def probe_fanout(task: Task, candidate_ids: list[str], config: TrainConfig,
                 progress: Callable[[str], None] | None = None) -> FanOut[dict[str, GainEstimate]]:
    """The head-only baseline (trained now), then one probe per candidate; folds to each one's `probe` estimate."""
    say = progress or (lambda message: None)
    say("training the head-only baseline")
    baseline = train_plan(task, [], config)
    probes = {cid: [cid] for cid in candidate_ids}

    def fold(runs: list[TrainResult], _seconds: float) -> dict[str, GainEstimate]:
        return {cid: result.estimate() for cid, result in probed(probes, runs, baseline).items()}

    return FanOut([Run(cid, [cid], config) for cid in candidate_ids], fold)

