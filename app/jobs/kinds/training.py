"""The training task of a gains or validation job: the built-in one, or a stored dataset on a model directory."""

from __future__ import annotations

from typing import Literal, cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.jobs.specs import BuiltinTask, TaskSpec
from app.modelspec import resolve_model_path
from app.settings import Settings
from app.store.tables import DatasetRow
from profiler.training.datasets import DatasetError, parse_dataset
from profiler.training.task import Task, builtin_task, user_task


def load_task(engine: Engine, spec: TaskSpec, settings: Settings) -> Task:
    """Build the task (a dataset holds out 20 % for validation, one fixed split); DatasetError if it cannot be."""
    if isinstance(spec, BuiltinTask):
        return builtin_task()
    with Session(engine) as session:
        row = session.get(DatasetRow, spec.dataset_id)
        if row is None:
            raise DatasetError(f"dataset {spec.dataset_id!r} no longer exists")
        data = parse_dataset(row.body, cast(Literal["jsonl", "npz"], row.format))
    return user_task(str(resolve_model_path(spec.model_path, settings)), data)
