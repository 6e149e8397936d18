"""Cheap gain sources: a raw signal per candidate, scaled to accuracy points per method.

Every cheap source is a `Signal` in its own module (`activation`, `importance`, `l1`, `condition`);
they share everything else, here:

1. Batches: `batches` x `batch_size` training examples from a seeded permutation (none for a signal
   that reads only weights). A signal that takes gradients gets the classifier with its head fitted
   first: the batches' pooled features are computed once (forward, no gradient) and the head trains
   on them for `config.steps` AdamW steps at the head's learning rate, as the baseline's head would,
   so the gradients are about the task and not about a random head. A causal LM's head (its
   `lm_head`) is pretrained: its gradients are about the task as they stand.
2. The signal's raw score of every candidate (>= 0, larger is better) and the work it ran.
3. Each method's value in accuracy points, from the prior or from a few probes, shared among its candidates by
   the signal (`method_values`, which has the rules). Probes evaluate on a seeded draw of at most
   `PROBE_VALIDATION` validation examples (the baseline too), so that the baseline and two probes cost less than
   three planned runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import nn
from torch.nn import functional as F

from profiler.candidates import CandidateRef, parse_id
from profiler.gains.calibrate import BundleResult, points_per_nat
from profiler.gains.cost import Work, baseline_work, pass_work, probe_work
from profiler.gains.estimate import GainEstimate, with_gains
from profiler.gains.fanout import Run, train_plan, train_runs
from profiler.gains.method_values import MethodValue, ProbedBundle, candidate_gains, method_values, probe_plan
from profiler.gains.prior import prior_gains
from profiler.gains.probe import probed
from profiler.gains.proxy import draw
from profiler.methods.base import freeze
from profiler.schema import GainCost, Profile
from profiler.training.finetune import TrainConfig
from profiler.training.task import Batch, Classifier, Task, TaskModel

BATCHES, BATCH_SIZE = 4, 16  # the default draw: 64 examples, a few % of a 100-step run at batch 16
PROBE_VALIDATION = 400  # at a 100 x 16 run: baseline 0.625 + two probes 2 x 1.125 = 2.875 planned runs


@dataclass(frozen=True)
class SignalInput:
    """What a signal reads: the frozen encoder (sites are its submodules), the classifier with its head
    fitted (None for a signal without data), the candidates, the batches and the training config."""

    encoder: nn.Module
    model: TaskModel | None
    refs: list[CandidateRef]
    batches: list[tuple[Batch, torch.Tensor]]
    config: TrainConfig


@dataclass(frozen=True)
class SignalResult:
    """Raw score per candidate id (>= 0), the work the signal ran, and per-candidate details."""

    scores: dict[str, float]
    work: Work
    details: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Signal:
    """A raw per-candidate signal: its source name, what it measures (and its units), whether it reads
    batches, whether it needs the fitted head (gradients), and the function computing it."""

    name: str
    description: str
    data: bool
    head: bool
    compute: Callable[[SignalInput], SignalResult]


class CheapReport(BaseModel):
    """A cheap source's run: its signal, batches, times, its probes, how each method was valued, and its cost."""

    source: str
    signal: str = Field(description="What the raw score measures.")
    batches: int
    batch_size: int
    seed: int
    signal_s: float = Field(description="Wall time of the signal (head fit included), seconds.")
    probe_s: float = Field(description="Wall time of the probes (baseline included), seconds.")
    probes: int = Field(description="Bundles probed (`method_values.probe_plan`).")
    probe_validation: int = Field(description="Validation examples the probes and their baseline evaluated on.")
    baseline_accuracy: float | None = None
    points_per_nat: float | None = None
    probed: list[ProbedBundle] = Field(default_factory=list, description="What each probe measured and is worth.")
    methods: list[MethodValue] = Field(description="How each method's raw scores became accuracy points.")
    signal_work: dict[str, int] = Field(description="Examples the signal passed forward and backward.")
    cost: GainCost | None = Field(default=None, description="The whole run's cost (set by `fill_gains`).")


def fit_head(model: Classifier, batches: list[tuple[Batch, torch.Tensor]], config: TrainConfig) -> None:
    """Fit `model.head` on the pooled features of `batches` (computed once, no gradient): `config.steps`
    AdamW steps of `config.batch_size` features at the head's learning rate; everything is left frozen."""
    with torch.no_grad():
        features = torch.cat([model.features(b) for b, _ in batches])
        labels = torch.cat([y for _, y in batches])
    head = list(model.head.parameters())
    for p in head:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(head, lr=config.lr_of("head"), weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.steps):
        pick = torch.randint(len(labels), (min(config.batch_size, len(labels)),), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model.head(features[pick]), labels[pick]).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    freeze(model)


def setting_scale(ref: CandidateRef) -> float:
    """sqrt(setting), 1 for a method without one: how signals that see only a site grow with rank, bottleneck
    or prompt length (the prior's diminishing returns)."""
    return float(ref.setting) ** 0.5 if ref.setting is not None else 1.0


def run_signal(signal: Signal, encoder: nn.Module, model: TaskModel | None, candidate_ids: list[str],
               task: Task | None, config: TrainConfig, batches: int = BATCHES,
               batch_size: int = BATCH_SIZE) -> SignalResult:
    """The signal's raw scores on `encoder` (or `model`'s, a classifier's head fitted here when the signal needs
    it), with the head fit's forward passes counted in its work."""
    drawn = draw(task.train, batches, batch_size, config.seed) if signal.data and task is not None else []
    work = Work()
    if signal.head and isinstance(model, Classifier):  # a causal LM's head is pretrained: nothing to fit
        fit_head(model, drawn, config)
        work = pass_work(sum(len(y) for _, y in drawn), backward=False)
    result = signal.compute(SignalInput(encoder, model, [parse_id(c) for c in candidate_ids], drawn, config))
    return SignalResult(result.scores, work + result.work, result.details)


def cheap_gains(signal: Signal, profile: Profile, task: Task | None, config: TrainConfig, *, probes: int = 0,
                workers: int = 1, batches: int = BATCHES, batch_size: int = BATCH_SIZE,
                probe_validation: int = PROBE_VALIDATION, encoder: nn.Module | None = None,
                progress: Callable[[str], None] | None = None) -> tuple[Profile, CheapReport, Work]:
    """The profile with `signal`'s gains on every candidate (accuracy points), its report and the work it ran.
    `encoder` (frozen) is read when there is no task; probes need a task."""
    say = progress or (lambda message: None)
    if probes and task is None:
        raise ValueError(f"{signal.name}: probes need a task to train on")
    ids = [c.id for c in profile.candidates]
    start = time.perf_counter()
    model = task.model(config.seed) if task is not None else None
    base = model.encoder if model is not None else encoder
    assert base is not None
    result = run_signal(signal, base, model, ids, task, config, batches, batch_size)
    signal_s = time.perf_counter() - start
    say(f"{signal.name}: raw scores of {len(ids)} candidates in {signal_s:.1f} s")
    prior = {cid: e.gain for cid, e in prior_gains(profile.candidates).items()}
    plan = probe_plan(ids, prior, probes)
    measured: dict[str, BundleResult] = {}
    rows: list[ProbedBundle] = []
    work, probe_s, baseline_accuracy, validation = result.work, 0.0, None, 0
    if plan:
        assert task is not None
        start = time.perf_counter()
        probing = task.with_validation(probe_validation, config.seed)
        validation = len(probing.validation)
        say(f"{signal.name}: probing {len(plan)} bundles and the head-only baseline on {validation} validation examples")
        chosen = {b.name: b.candidates for b in plan}
        trained = train_runs(probing, [Run(name, members, config) for name, members in chosen.items()], workers,
                             progress=lambda d, n: say(f"probe {d}/{n}"))
        runs = probed(chosen, trained, train_plan(probing, [], config))
        probe_s = time.perf_counter() - start
        measured = {name: BundleResult(role=name, setting=None, points=r.points, loss_decrease=r.loss_decrease)
                    for name, r in runs.items()}
        baseline_accuracy = next(iter(runs.values())).baseline_accuracy
        work = work + probe_work(config, validation, len(plan)) + baseline_work(
            config, validation, task.kind == "classification")
    values = method_values(result.scores, prior, plan, measured)
    if plan:
        k = points_per_nat(list(measured.values()))
        params = {c.id: c.params for c in profile.candidates}
        rows = [ProbedBundle(name=b.name, candidates=len(b.candidates), params=sum(params[c] for c in b.candidates),
                             points=measured[b.name].points, loss_decrease=measured[b.name].loss_decrease,
                             value=max(0.0, k * measured[b.name].loss_decrease)) for b in plan]
    estimates = {cid: GainEstimate(gain=gain, source=signal.name, details={  # type: ignore[arg-type]
        **result.details.get(cid, {}), "raw_score": result.scores[cid], **how,
        "batches": batches if signal.data else 0, "batch_size": batch_size, "seed": config.seed})
        for cid, (gain, how) in candidate_gains(result.scores, values).items()}
    report = CheapReport(source=signal.name, signal=signal.description, batches=batches if signal.data else 0,
                         batch_size=batch_size, seed=config.seed, signal_s=signal_s, probe_s=probe_s,
                         probes=len(plan), probe_validation=validation, baseline_accuracy=baseline_accuracy,
                         points_per_nat=points_per_nat(list(measured.values())) if measured else None,
                         probed=rows, methods=values,
                         signal_work={"forward": result.work.forward, "backward": result.work.backward})
    return with_gains(profile, estimates), report, work


def encoder_of(profile: Profile, seed: int = 0) -> nn.Module:
    """The profiled model, frozen: its pretrained weights for a model directory, else the random weights the
    profiler builds (seeded), for signals that read only weights."""
    if profile.spec.path is not None:
        from profiler.training.task import load_encoder

        return load_encoder(profile.spec.path, profile.task_kind)[0]
    from profiler.models.build import build

    torch.manual_seed(seed)
    return freeze(build(profile.spec, "cpu", task=profile.model.task or "auto").model)
