"""The gain-source registry: one entry per source that fills a profile's gains, `gains_fanout` and `fill_gains`.

A source is a function `(profile, task, config, progress) -> FanOut` whose fold gives (profile with gains,
report or None) (`profiler.gains.fanout`); adding one is a module with that function and one line in `SOURCES`. Gains the user gives (by
candidate id or by method) are not filled into profiles: they are applied when planning
(`app.planning.GainSpec`) and recorded as `candidate`, `method` or `method-layer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from profiler.gains.estimate import with_gains
from profiler.gains.fanout import FanOut, run_here
from profiler.gains.gradient import gradient_fanout
from profiler.gains.prior import prior_gains
from profiler.gains.probe import probe_fanout
from profiler.schema import Profile
from profiler.training.finetune import TrainConfig
from profiler.training.task import Task

Progress = Callable[[str], None]
Gained = tuple[Profile, BaseModel | None]
Prepare = Callable[[Profile, Task | None, TrainConfig, Progress], FanOut[Gained]]


@dataclass(frozen=True)
class Source:
    """A registered gain source: its name, what it does, whether it trains on a task, and its fan-out."""

    name: str
    description: str
    needs_task: bool
    prepare: Prepare


def _prior(profile: Profile, task: Task | None, config: TrainConfig, progress: Progress) -> FanOut[Gained]:
    return FanOut([], lambda _runs, _s: (with_gains(profile, prior_gains(profile.candidates)), None))


def _gradient(profile: Profile, task: Task | None, config: TrainConfig, progress: Progress) -> FanOut[Gained]:
    assert task is not None
    return gradient_fanout(task, profile, config, progress=progress)


def _probe(profile: Profile, task: Task | None, config: TrainConfig, progress: Progress) -> FanOut[Gained]:
    assert task is not None
    probes = probe_fanout(task, [c.id for c in profile.candidates], config, progress)
    return FanOut(probes.runs, lambda runs, seconds: (with_gains(profile, probes.fold(runs, seconds)), None))


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("prior", "a documented default per method; no data", False, _prior),
    Source("gradient", "a gradient proxy on a few batches, calibrated by probes of whole roles", True, _gradient),
    Source("probe", "a short fine-tune of every candidate alone (the expensive source)", True, _probe),
)}


def gains_fanout(profile: Profile, source: str, task: Task | None = None, config: TrainConfig | None = None,
                 progress: Progress | None = None) -> FanOut[Gained]:
    """The source's fan-out on the profile (what it trains before the runs is trained now); its fold gives the
    profile with every candidate's gain and the source's report. ValueError for an unknown source or a missing task."""
    entry = SOURCES.get(source)
    if entry is None:
        raise ValueError(f"unknown gain source {source!r}; registered: {', '.join(SOURCES)}")
    if entry.needs_task and task is None:
        raise ValueError(f"gain source {source!r} needs a task to train on")
    return entry.prepare(profile, task, config or TrainConfig(), progress or (lambda message: None))


def fill_gains(profile: Profile, source: str, task: Task | None = None, config: TrainConfig | None = None,
               workers: int = 1, progress: Progress | None = None) -> Gained:
    """The profile with every candidate's gain from `source`, and the source's report (the gradient
    source's GainReport; None for the others), its runs trained here or in `workers` forked processes."""
    say = progress or (lambda message: None)
    return run_here(task, gains_fanout(profile, source, task, config, say), workers,
                    lambda done, total: say(f"probe {done}/{total}"))
