"""The gain-source registry: one entry per source that fills a profile's gains, and `fill_gains`.

A source is a function `(profile, task, config, workers, progress) -> (profile with gains, report or None)`;
adding one is a module with that function and one line in `SOURCES`. Gains the user gives (by
candidate id or by method) are not filled into profiles: they are applied when planning
(`app.planning.GainSpec`) and recorded as `candidate`, `method` or `method-layer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from profiler.gains.estimate import with_gains
from profiler.gains.gradient import estimate_gains
from profiler.gains.prior import prior_gains
from profiler.gains.probe import probe_every_candidate
from profiler.schema import Profile
from profiler.training.finetune import TrainConfig
from profiler.training.task import Task

Progress = Callable[[str], None]
Fill = Callable[[Profile, Task | None, TrainConfig, int, Progress], tuple[Profile, BaseModel | None]]


@dataclass(frozen=True)
class Source:
    """A registered gain source: its name, what it does, whether it trains on a task, and its fill function."""

    name: str
    description: str
    needs_task: bool
    fill: Fill


def _prior(profile: Profile, task: Task | None, config: TrainConfig, workers: int,
           progress: Progress) -> tuple[Profile, None]:
    return with_gains(profile, prior_gains(profile.candidates)), None


def _gradient(profile: Profile, task: Task | None, config: TrainConfig, workers: int,
              progress: Progress) -> tuple[Profile, BaseModel]:
    assert task is not None
    return estimate_gains(task, profile, config, progress=progress, workers=workers)


def _probe(profile: Profile, task: Task | None, config: TrainConfig, workers: int,
           progress: Progress) -> tuple[Profile, None]:
    assert task is not None
    estimates = probe_every_candidate(task, [c.id for c in profile.candidates], config, workers, progress)
    return with_gains(profile, estimates), None


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("prior", "a documented default per method; no data", False, _prior),
    Source("gradient", "a gradient proxy on a few batches, calibrated by probes of whole roles", True, _gradient),
    Source("probe", "a short fine-tune of every candidate alone (the expensive source)", True, _probe),
)}


def fill_gains(profile: Profile, source: str, task: Task | None = None, config: TrainConfig | None = None,
               workers: int = 1, progress: Progress | None = None) -> tuple[Profile, BaseModel | None]:
    """The profile with every candidate's gain from `source`, and the source's report (the gradient
    source's GainReport; None for the others). ValueError for an unknown source or a missing task."""
    entry = SOURCES.get(source)
    if entry is None:
        raise ValueError(f"unknown gain source {source!r}; registered: {', '.join(SOURCES)}")
    if entry.needs_task and task is None:
        raise ValueError(f"gain source {source!r} needs a task to train on")
    return entry.fill(profile, task, config or TrainConfig(), workers, progress or (lambda message: None))
