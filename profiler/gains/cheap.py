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
3. A scale per method, gain = scale_m x raw, in accuracy points:
   * with no probes, scale_m makes the method's summed gain equal its summed prior gain
     (`prior.py`, a fit on one model and task shared across tasks): the signal ranks sites and
     settings within a method, the prior sets the method's level;
   * with `probes` = P, the head-only baseline and P method bundles are trained (methods by summed
     prior gain, largest first; a bundle is the method's candidates at its smallest setting on
     every site). A probed method's scale makes its bundle's summed gain equal the bundle's
     measured value max(0, k·Δloss) (k: points per nat through the origin over the probes,
     `calibrate.points_per_nat`); a method not probed keeps its prior scale times the median, over
     probed methods, of their scale over their prior scale.
   Gains add linearly: the noisy-OR saturation of `calibrate` needs a full fine-tuning probe.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field
from torch import nn
from torch.nn import functional as F

from profiler.candidates import CandidateRef, parse_id
from profiler.gains.calibrate import BundleResult, points_per_nat
from profiler.gains.cost import Work, baseline_work, pass_work, probe_work
from profiler.gains.estimate import GainEstimate, with_gains
from profiler.gains.fanout import Run, train_plan, train_runs
from profiler.gains.prior import prior_gains
from profiler.gains.probe import probed
from profiler.gains.proxy import draw
from profiler.methods.base import freeze
from profiler.schema import GainCost, Profile
from profiler.training.finetune import TrainConfig
from profiler.training.task import Batch, Classifier, Task, TaskModel

BATCHES, BATCH_SIZE = 4, 16  # the default draw: 64 examples, a few % of a 100-step run at batch 16


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


class MethodScale(BaseModel):
    """How one method's raw scores became accuracy points."""

    method: str
    candidates: int
    raw_sum: float = Field(description="Summed raw score of the method's candidates.")
    prior_points: float = Field(description="Summed prior gain of the method's candidates, points.")
    scale: float = Field(description="Accuracy points per unit of raw score.")
    basis: Literal["prior", "probe", "prior x probes"]
    probe_candidates: int = Field(default=0, description="Candidates in the method's probed bundle (0: none).")
    probe_params: int = 0
    probe_points: float | None = Field(default=None, description="The bundle's accuracy gain over head only.")
    probe_loss_decrease: float | None = Field(default=None, description="The bundle's validation-loss decrease.")
    probe_value: float | None = Field(default=None, description="max(0, k·Δloss), points: what the bundle is worth.")
    probe_raw: float | None = Field(default=None, description="Summed raw score of the bundle's candidates.")


class CheapReport(BaseModel):
    """A cheap source's run: its signal, batches, times, how each method was scaled, and its cost."""

    source: str
    signal: str = Field(description="What the raw score measures.")
    batches: int
    batch_size: int
    seed: int
    signal_s: float = Field(description="Wall time of the signal (head fit included), seconds.")
    probe_s: float = Field(description="Wall time of the probes (baseline included), seconds.")
    probes: int = Field(description="Method bundles probed.")
    baseline_accuracy: float | None = None
    points_per_nat: float | None = None
    scales: list[MethodScale]
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


def method_bundles(candidate_ids: list[str]) -> dict[str, list[str]]:
    """Per method, its candidates at its smallest setting (every candidate of a method without settings)."""
    by_method: dict[str, dict[int | None, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cid in candidate_ids:
        ref = parse_id(cid)
        by_method[ref.method][ref.setting].append(cid)
    return {m: sorted(s[min(s, key=lambda x: -1 if x is None else x)]) for m, s in by_method.items()}


def _sums(values: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for cid, v in values.items():
        out[parse_id(cid).method] += v
    return out


def scale_methods(scores: dict[str, float], prior: dict[str, float], params: dict[str, int],
                  probed: dict[str, BundleResult], bundles: dict[str, list[str]]) -> list[MethodScale]:
    """Each method's scale (module docstring, step 3) from raw scores, prior gains and probed bundles
    (method -> what its bundle measured; `bundles` gives its candidates)."""
    raw, points = _sums(scores), _sums(prior)
    counts = _sums({c: 1.0 for c in scores})
    k = points_per_nat(list(probed.values())) if probed else 0.0

    def prior_scale(m: str) -> float:
        return points[m] / raw[m] if raw[m] > 0 else 0.0

    out: dict[str, MethodScale] = {}
    for m in raw:
        base = MethodScale(method=m, candidates=int(counts[m]), raw_sum=raw[m], prior_points=points[m],
                           scale=prior_scale(m), basis="prior")
        if m in probed:
            r = probed[m]
            bundle_raw = sum(scores[c] for c in bundles[m])
            value = max(0.0, k * r.loss_decrease)
            base = base.model_copy(update={
                "basis": "probe", "scale": value / bundle_raw if bundle_raw > 0 else 0.0,
                "probe_candidates": len(bundles[m]), "probe_params": sum(params[c] for c in bundles[m]),
                "probe_points": r.points, "probe_loss_decrease": r.loss_decrease, "probe_value": value,
                "probe_raw": bundle_raw})
        out[m] = base
    ratios = [out[m].scale / prior_scale(m) for m in probed if prior_scale(m) > 0]
    if ratios:
        factor = statistics.median(ratios)
        for m, s in out.items():
            if m not in probed:
                out[m] = s.model_copy(update={"scale": s.scale * factor, "basis": "prior x probes"})
    return list(out.values())


def cheap_gains(signal: Signal, profile: Profile, task: Task | None, config: TrainConfig, *, probes: int = 0,
                workers: int = 1, batches: int = BATCHES, batch_size: int = BATCH_SIZE,
                encoder: nn.Module | None = None,
                progress: Callable[[str], None] | None = None) -> tuple[Profile, CheapReport, Work]:
    """The profile with `signal`'s calibrated gains on every candidate (accuracy points), its report and the work
    it ran. `encoder` (frozen) is read when there is no task; probes need a task."""
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
    bundles = method_bundles(ids)
    order = sorted(bundles, key=lambda m: -sum(prior[c] for c in ids if parse_id(c).method == m))[:probes]
    measured: dict[str, BundleResult] = {}
    work, probe_s, baseline_accuracy = result.work, 0.0, None
    if order:
        assert task is not None
        start = time.perf_counter()
        say(f"{signal.name}: probing {len(order)} method bundles and the head-only baseline")
        chosen = {m: bundles[m] for m in order}
        trained = train_runs(task, [Run(m, members, config) for m, members in chosen.items()], workers,
                             progress=lambda d, n: say(f"probe {d}/{n}"))
        runs = probed(chosen, trained, train_plan(task, [], config))
        probe_s = time.perf_counter() - start
        measured = {m: BundleResult(role=m, setting=None, points=r.points, loss_decrease=r.loss_decrease)
                    for m, r in runs.items()}
        baseline_accuracy = next(iter(runs.values())).baseline_accuracy
        work = work + probe_work(config, len(task.validation), len(order)) + baseline_work(
            config, len(task.validation), task.kind == "classification")
    scales = scale_methods(result.scores, prior, {c.id: c.params for c in profile.candidates}, measured, bundles)
    by_method = {s.method: s for s in scales}
    estimates = {}
    for cid, raw in result.scores.items():
        s = by_method[parse_id(cid).method]
        estimates[cid] = GainEstimate(gain=s.scale * raw, source=signal.name, details={  # type: ignore[arg-type]
            **result.details.get(cid, {}), "raw_score": raw, "method_scale": s.scale, "scale_basis": s.basis,
            "batches": batches if signal.data else 0, "batch_size": batch_size, "seed": config.seed})
    report = CheapReport(source=signal.name, signal=signal.description, batches=batches if signal.data else 0,
                         batch_size=batch_size, seed=config.seed, signal_s=signal_s, probe_s=probe_s,
                         probes=len(order), baseline_accuracy=baseline_accuracy,
                         points_per_nat=points_per_nat(list(measured.values())) if measured else None, scales=scales,
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
