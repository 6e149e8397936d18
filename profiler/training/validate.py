"""Validation job: fine-tune a plan for N steps and put its realized gain next to the predicted one."""

from __future__ import annotations

import statistics

from pydantic import BaseModel, Field

from profiler.gains.fanout import FanOut, Run, run_here
from profiler.training.finetune import TrainConfig, TrainResult
from profiler.training.task import Task


class PlanValidation(BaseModel):
    """Realized vs predicted gain of a plan, in accuracy points over head only (same seeds and steps)."""

    predicted_points: float | None
    realized_points: float = Field(description="Mean over seeds of plan accuracy minus head-only accuracy.")
    realized_std: float = Field(description="Standard deviation over seeds of that difference (0 for one seed).")
    plan_runs: list[TrainResult]
    baseline_runs: list[TrainResult]


def validation_fanout(candidate_ids: list[str], config: TrainConfig, seeds: int = 1,
                      predicted_points: float | None = None) -> FanOut[PlanValidation]:
    """Per seed config.seed .. config.seed + seeds - 1, two runs: the plan, and the head-only baseline."""
    configs = [config.model_copy(update={"seed": config.seed + s}) for s in range(seeds)]
    runs = [Run(f"{label}, seed {c.seed}", candidates, c) for c in configs
            for label, candidates in (("plan", candidate_ids), ("head only", []))]

    def fold(results: list[TrainResult], _seconds: float) -> PlanValidation:
        plan, base = results[0::2], results[1::2]
        diffs = [100.0 * (p.accuracy - b.accuracy) for p, b in zip(plan, base, strict=True)]
        return PlanValidation(predicted_points=predicted_points, realized_points=statistics.fmean(diffs),
                              realized_std=statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                              plan_runs=plan, baseline_runs=base)

    return FanOut(runs, fold)


def validate_plan(task: Task, candidate_ids: list[str], config: TrainConfig, seeds: int = 1,
                  predicted_points: float | None = None) -> PlanValidation:
    """Train the plan and the head-only baseline with seeds config.seed .. config.seed + seeds - 1, here."""
    return run_here(task, validation_fanout(candidate_ids, config, seeds, predicted_points))
