"""The training task of a gains or validation job: the built-in one, or a stored dataset on a model directory.

`task_source` reads what builds the task (here, where the database is); `TaskSource.build` builds it
anywhere the model directory has the same path (a Ray worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.jobs.specs import BuiltinTask, TaskSpec
from app.modelspec import resolve_model_path
from app.settings import Settings
from app.store.tables import DatasetRow
from profiler.training.datasets import DatasetError, TaskKind, parse_dataset
from profiler.training.finetune import TrainConfig
from profiler.training.task import Task, builtin_task, user_task


@dataclass(frozen=True)
class TaskSource:
    """The built-in task of a kind (no dataset), or a dataset's bytes and format on a model directory (an absolute
    path) for a task of `kind` (the kind the profile was made for; None: the dataset's)."""

    model_path: str | None = None
    body: bytes | None = None
    format: Literal["jsonl", "npz"] | None = None
    kind: TaskKind | None = None

    def build(self) -> Task:
        """The task (a dataset holds out 20 % for validation, one fixed split); DatasetError if it cannot be built."""
        if self.model_path is None:
            return builtin_task(self.kind or "classification")
        assert self.body is not None and self.format is not None
        return user_task(self.model_path, parse_dataset(self.body, self.format), kind=self.kind)


def task_source(engine: Engine, spec: TaskSpec, settings: Settings, kind: TaskKind | None = None) -> TaskSource:
    """What builds the job's task of `kind`: its dataset read from the store, its model directory resolved under
    the models root."""
    if isinstance(spec, BuiltinTask):
        return TaskSource(kind=kind)
    with Session(engine) as session:
        row = session.get(DatasetRow, spec.dataset_id)
        if row is None:
            raise DatasetError(f"dataset {spec.dataset_id!r} no longer exists")
        body, fmt = row.body, cast(Literal["jsonl", "npz"], row.format)
    return TaskSource(str(resolve_model_path(spec.model_path, settings)), body, fmt, kind)


def load_task(engine: Engine, spec: TaskSpec, settings: Settings, kind: TaskKind | None = None) -> Task:
    """Build the job's task of `kind` here (`task_source`, then `TaskSource.build`)."""
    return task_source(engine, spec, settings, kind).build()


def train_device(train: TrainConfig | None) -> dict[str, str]:
    """The resources options of a job's Ray tasks: the device its runs train on (default: the CPU)."""
    return {"device": "cpu" if train is None else train.device}
