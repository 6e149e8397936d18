"""The gain-source registry: one entry per source that fills a profile's gains, and `fill_gains`.

A source is a function `(profile, task, config, workers, probes, progress) -> (profile with gains, report or
None, work)`; adding one is a module with that function and one line in `SOURCES` (a cheap source: a
`cheap.Signal` in its module and `_cheap(signal)`). `fill_gains` times every run and records its cost
(`cost.gain_cost`) on the profile and in the report. Gains the user gives (by candidate id or by method)
are not filled into profiles: they are applied when planning (`app.planning.GainSpec`) and recorded as
`candidate`, `method` or `method-layer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from profiler.gains import activation, condition, importance, l1
from profiler.gains.cheap import Signal, cheap_gains, encoder_of
from profiler.gains.cost import Work, gain_cost, pass_work, probe_work
from profiler.gains.estimate import with_gains
from profiler.gains.gradient import PROXY_BATCH_SIZE, PROXY_BATCHES, estimate_gains
from profiler.gains.prior import prior_gains
from profiler.gains.probe import probe_every_candidate
from profiler.gains.proxy import proxy_passes
from profiler.schema import Profile
from profiler.training.finetune import TrainConfig
from profiler.training.task import Task

Progress = Callable[[str], None]
Fill = Callable[[Profile, Task | None, TrainConfig, int, int, Progress], tuple[Profile, BaseModel | None, Work]]


@dataclass(frozen=True)
class Source:
    """A registered gain source: its name, what it does, whether it trains on a task, whether it takes a probe
    budget, and its fill function."""

    name: str
    description: str
    needs_task: bool
    fill: Fill
    probes: bool = False


def _prior(profile: Profile, task: Task | None, config: TrainConfig, workers: int, probes: int,
           progress: Progress) -> tuple[Profile, None, Work]:
    return with_gains(profile, prior_gains(profile.candidates)), None, Work()


def _gradient(profile: Profile, task: Task | None, config: TrainConfig, workers: int, probes: int,
              progress: Progress) -> tuple[Profile, BaseModel, Work]:
    assert task is not None
    gained, report = estimate_gains(task, profile, config, progress=progress, workers=workers)
    runs = len(report.bundles) + len(report.mixtures) + len(report.probes) + 1  # and full fine-tuning
    passes = proxy_passes([c.id for c in profile.candidates])
    work = (pass_work(passes * min(len(task.train), PROXY_BATCHES * PROXY_BATCH_SIZE), backward=True)
            + probe_work(config, len(task.validation), runs) + probe_work(config, len(task.validation), head_only=True))
    return gained, report, work


def _probe(profile: Profile, task: Task | None, config: TrainConfig, workers: int, probes: int,
           progress: Progress) -> tuple[Profile, None, Work]:
    assert task is not None
    estimates = probe_every_candidate(task, [c.id for c in profile.candidates], config, workers, progress)
    work = probe_work(config, len(task.validation), len(estimates)) + probe_work(config, len(task.validation),
                                                                                 head_only=True)
    return with_gains(profile, estimates), None, work


def _cheap(signal: Signal) -> Fill:
    def fill(profile: Profile, task: Task | None, config: TrainConfig, workers: int, probes: int,
             progress: Progress) -> tuple[Profile, BaseModel, Work]:
        encoder = None if task is not None else encoder_of(profile, config.seed)
        return cheap_gains(signal, profile, task, config, probes=probes, workers=workers, encoder=encoder,
                           progress=progress)
    return fill


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("prior", "a documented default per method; no data", False, _prior),
    Source("gradient", "a gradient proxy on a few batches, calibrated by probes of whole roles", True, _gradient),
    Source("probe", "a short fine-tune of every candidate alone (the expensive source)", True, _probe),
    Source("activation", "explained variance of each site's inputs (EVA-style), forward passes only", True,
           _cheap(activation.SIGNAL), probes=True),
    Source("gradient-importance", "mean |W*G| per site (GoRA-style) from one backward pass", True,
           _cheap(importance.SIGNAL), probes=True),
    Source("gradient-l1", "lr x L1 norm of each adapter's gradient (AdamW's first step)", True,
           _cheap(l1.SIGNAL), probes=True),
    Source("weight-condition", "condition number of each site's weight (KappaTune-style); no data", False,
           _cheap(condition.SIGNAL), probes=True),
)}


def fill_gains(profile: Profile, source: str, task: Task | None = None, config: TrainConfig | None = None,
               workers: int = 1, progress: Progress | None = None,
               probes: int = 0) -> tuple[Profile, BaseModel | None]:
    """The profile with every candidate's gain from `source` and its `gain_cost`, and the source's report (with
    the same `cost`; None for prior and probe). `probes` is the probe budget of the sources that take one.
    ValueError for an unknown source, a missing task, or probes for a source without a budget."""
    entry = SOURCES.get(source)
    if entry is None:
        raise ValueError(f"unknown gain source {source!r}; registered: {', '.join(SOURCES)}")
    if entry.needs_task and task is None:
        raise ValueError(f"gain source {source!r} needs a task to train on")
    if probes and not entry.probes:
        raise ValueError(f"gain source {source!r} takes no probe budget")
    config = config or TrainConfig()
    start = time.perf_counter()
    gained, report, work = entry.fill(profile, task, config, workers, probes, progress or (lambda message: None))
    cost = gain_cost(source, time.perf_counter() - start, work, config)
    if report is not None and "cost" in type(report).model_fields:
        report = report.model_copy(update={"cost": cost})
    return gained.model_copy(update={"gain_cost": cost}), report
