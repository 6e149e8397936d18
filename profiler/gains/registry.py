"""The gain-source registry: one entry per source that fills a profile's gains, `gains_fanout` and `fill_gains`.

A source is a function `(profile, task, config, probes, progress) -> FanOut` whose fold gives (profile with
gains, report or None, work) (`profiler.gains.fanout`); adding one is a module with that function and one
line in `SOURCES` (a cheap source: a `cheap.Signal` in its module and `_cheap(signal)`). `gains_fanout`
times every run and records its cost (`cost.gain_cost`) on the profile and in the report. Gains the user
gives (by candidate id or by method) are not filled into profiles: they are applied when planning
(`app.planning.GainSpec`) and recorded as `candidate`, `method` or `method-layer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from profiler.gains import activation, condition, importance, l1
from profiler.gains.cheap import Signal, cheap_gains, encoder_of
from profiler.gains.cost import Work, baseline_work, gain_cost, pass_work, probe_work
from profiler.gains.estimate import with_gains
from profiler.gains.fanout import FanOut, run_here
from profiler.gains.gradient import PROXY_BATCH_SIZE, PROXY_BATCHES, gradient_fanout
from profiler.gains.prior import prior_gains
from profiler.gains.probe import probe_fanout
from profiler.gains.proxy import proxy_passes
from profiler.schema import Profile
from profiler.training.finetune import TrainConfig
from profiler.training.task import Task

Progress = Callable[[str], None]
Gained = tuple[Profile, BaseModel | None]
Prepare = Callable[[Profile, Task | None, TrainConfig, int, Progress], FanOut[tuple[Profile, BaseModel | None, Work]]]


@dataclass(frozen=True)
class Source:
    """A registered gain source: its name, what it does, whether it trains on a task, its fan-out, and whether
    it takes a probe budget."""

    name: str
    description: str
    needs_task: bool
    prepare: Prepare
    probes: bool = False


def _prior(profile: Profile, task: Task | None, config: TrainConfig, probes: int,
           progress: Progress) -> FanOut[tuple[Profile, None, Work]]:
    return FanOut([], lambda _runs, _s: (with_gains(profile, prior_gains(profile.candidates)), None, Work()))


def _gradient(profile: Profile, task: Task | None, config: TrainConfig, probes: int,
              progress: Progress) -> FanOut[tuple[Profile, BaseModel, Work]]:
    assert task is not None
    fanout = gradient_fanout(task, profile, config, progress=progress)
    passes = proxy_passes([c.id for c in profile.candidates])
    proxy = pass_work(passes * min(len(task.train), PROXY_BATCHES * PROXY_BATCH_SIZE), backward=True)

    def fold(runs, seconds):
        gained, report = fanout.fold(runs, seconds)
        n = len(report.bundles) + len(report.mixtures) + len(report.probes) + 1  # and full fine-tuning
        work = proxy + probe_work(config, len(task.validation), n) + baseline_work(
            config, len(task.validation), task.kind == "classification")
        return gained, report, work

    return FanOut(fanout.runs, fold)


def _probe(profile: Profile, task: Task | None, config: TrainConfig, probes: int,
           progress: Progress) -> FanOut[tuple[Profile, None, Work]]:
    assert task is not None
    fanout = probe_fanout(task, [c.id for c in profile.candidates], config, progress)

    def fold(runs, seconds):
        estimates = fanout.fold(runs, seconds)
        work = probe_work(config, len(task.validation), len(estimates)) + baseline_work(
            config, len(task.validation), task.kind == "classification")
        return with_gains(profile, estimates), None, work

    return FanOut(fanout.runs, fold)


def _cheap(signal: Signal) -> Prepare:
    def prepare(profile: Profile, task: Task | None, config: TrainConfig, probes: int,
                progress: Progress) -> FanOut[tuple[Profile, BaseModel, Work]]:
        encoder = None if task is not None else encoder_of(profile, config.seed)
        done = cheap_gains(signal, profile, task, config, probes=probes, encoder=encoder, progress=progress)
        return FanOut([], lambda _runs, _s: done)  # its few probes train while it is prepared
    return prepare


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


def gains_fanout(profile: Profile, source: str, task: Task | None = None, config: TrainConfig | None = None,
                 progress: Progress | None = None, probes: int = 0) -> FanOut[Gained]:
    """The source's fan-out on the profile (what it trains before the runs is trained now); its fold gives the
    profile with every candidate's gain and its `gain_cost`, and the source's report (with the same `cost`;
    None for prior and probe). `probes` is the probe budget of the sources that take one. ValueError for an
    unknown source, a missing task, a task of another kind than the profile's, or probes for a source without a
    budget."""
    entry = SOURCES.get(source)
    if entry is None:
        raise ValueError(f"unknown gain source {source!r}; registered: {', '.join(SOURCES)}")
    if entry.needs_task and task is None:
        raise ValueError(f"gain source {source!r} needs a task to train on")
    if probes and not entry.probes:
        raise ValueError(f"gain source {source!r} takes no probe budget")
    profiled = profile.task_kind
    if task is not None and task.kind != profiled:
        raise ValueError(f"the profile was made for a {profiled} model but the task is {task.kind}: profile the "
                         f"model with the task {task.kind}, or give {profiled} data")
    config = config or TrainConfig()
    start = time.perf_counter()
    fanout = entry.prepare(profile, task, config, probes, progress or (lambda message: None))

    def fold(runs, seconds) -> Gained:
        gained, report, work = fanout.fold(runs, seconds)
        cost = gain_cost(source, time.perf_counter() - start, work, config)
        if report is not None and "cost" in type(report).model_fields:
            report = report.model_copy(update={"cost": cost})
        return gained.model_copy(update={"gain_cost": cost}), report

    return FanOut(fanout.runs, fold)


def fill_gains(profile: Profile, source: str, task: Task | None = None, config: TrainConfig | None = None,
               workers: int = 1, progress: Progress | None = None, probes: int = 0) -> Gained:
    """`gains_fanout`'s result with its runs trained here or in `workers` forked processes: the profile with
    every candidate's gain and `gain_cost`, and the source's report."""
    say = progress or (lambda message: None)
    return run_here(task, gains_fanout(profile, source, task, config, say, probes), workers,
                    lambda done, total: say(f"probe {done}/{total}"))
