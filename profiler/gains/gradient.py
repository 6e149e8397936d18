"""Gains from data, end to end: head-only baseline, gradient proxy on every candidate, role probes, calibration.

1. Train the head alone (the probes' baseline); with that fitted head, score every candidate by the
   gradient proxy on a few batches (`gradient.gradient_scores`).
2. Probe every role as a bundle at its smallest and largest setting (`calibrate.role_bundles`), the
   mixtures of every role at one end (`calibrate.mixtures`), full fine-tuning (the ceiling), and
   optionally a few single candidates per method spread over the proxy's ranking (only to report how
   well the proxy ranks single candidates; they are too noisy to calibrate on).
3. Fit the calibration on the bundles, mixtures and full fine-tuning; every candidate gets a `gradient`
   estimate (its role's value shared by the proxy), and the probed single candidates carry their
   probe's result in the details.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, Field

from profiler.candidates import parse_id
from profiler.gains.calibrate import (
    BundleResult,
    Calibration,
    fit_calibration,
    gradient_estimates,
    mixtures,
    role_bundles,
)
from profiler.gains.estimate import with_gains
from profiler.gains.fanout import FanOut, Run, run_here
from profiler.gains.probe import ProbeResult, probed
from profiler.gains.proxy import gradient_scores, score_details
from profiler.schema import GainCost, Profile
from profiler.training.finetune import TrainConfig, TrainResult, finetune
from profiler.training.task import Task


class ProbeRow(BaseModel):
    """A probe's candidates (one, or a role's bundle), summed proxy score and params, and what it measured."""

    name: str
    method: str = Field(description="The candidates' method, or `mixed`.")
    role: str | None = Field(default=None, description="The role of a bundle; None for a single candidate.")
    setting: int | None = None
    candidates: int
    params: int
    score: float = Field(description="Summed raw proxy score of the candidates.")
    points: float = Field(description="Validation accuracy gain over head only, accuracy points.")
    val_loss_decrease: float = Field(description="Validation cross-entropy decrease over head only, nats.")
    calibrated: float = Field(description="The calibrated gradient estimate of the same candidates, points.")


class Ranking(BaseModel):
    """Spearman correlations of the raw proxy with what probes measured, within one method."""

    method: str
    probes: int
    points: float | None = Field(description="Against accuracy gains.")
    loss: float | None = Field(description="Against validation-loss decreases.")


class GainReport(BaseModel):
    """How the gains were estimated, how long it took, and how well the proxy ranks the probes."""

    baseline_accuracy: float
    baseline_loss: float
    gradient_s: float
    probe_s: float
    probe_config: TrainConfig
    calibration: Calibration
    full_points: float = Field(description="Full fine-tuning's accuracy gain over head only (the ceiling's probe).")
    full_loss_decrease: float = Field(description="Full fine-tuning's validation-loss decrease, nats.")
    bundles: list[ProbeRow]
    mixtures: list[ProbeRow] = Field(description="Every role at its smallest / largest setting, trained together.")
    probes: list[ProbeRow] = Field(description="Single-candidate probes (reporting only).")
    bundle_rankings: list[Ranking] = Field(description="Proxy vs role bundles, per method with >= 3 bundles.")
    single_rankings: list[Ranking] = Field(description="Proxy vs single-candidate probes, per method.")
    cost: GainCost | None = Field(default=None, description="The whole run's cost (set by `fill_gains`).")


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman rank correlation with average ranks for ties; None with < 3 pairs or a constant side."""
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None

    def ranks(values: list[float]) -> np.ndarray:
        x = np.asarray(values, dtype=float)
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=float)
        for v in np.unique(x):  # average the ranks of ties
            r[x == v] = r[x == v].mean()
        return r

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def rankings(rows: list[ProbeRow], minimum: int = 3) -> list[Ranking]:
    """Per method with at least `minimum` rows: Spearman of the raw score against points and against loss."""
    by_method: dict[str, list[ProbeRow]] = {}
    for r in rows:
        by_method.setdefault(r.method, []).append(r)
    return [Ranking(method=m, probes=len(rs), points=spearman([r.score for r in rs], [r.points for r in rs]),
                    loss=spearman([r.score for r in rs], [r.val_loss_decrease for r in rs]))
            for m, rs in by_method.items() if len(rs) >= minimum]


def stratified(ids: list[str], scores: dict[str, float], k: int) -> list[str]:
    """k ids spread evenly over the ranking of their scores (the top one when k is 1, none when k is 0)."""
    if k <= 0:
        return []
    ranked = sorted(ids, key=lambda i: scores[i])
    if k >= len(ranked):
        return ranked
    return [ranked[round(j * (len(ranked) - 1) / (k - 1))] for j in range(k)] if k > 1 else ranked[-1:]


PROXY_BATCHES, PROXY_BATCH_SIZE = 4, 32  # the proxy's default draw
FULL = "full fine-tuning"


def gradient_fanout(task: Task, profile: Profile, config: TrainConfig, *, singles: dict[str, int] | None = None,
                    batches: int = PROXY_BATCHES, batch_size: int = PROXY_BATCH_SIZE,
                    progress: Callable[[str], None] | None = None) -> FanOut[tuple[Profile, GainReport]]:
    """Step 1 now (baseline, proxy scores) and the choice of probes; step 2's probes as the runs; the fold is
    step 3: the profile with calibrated gradient gains on every candidate, and the report.

    `singles` (method -> k) adds k single-candidate probes per method, for the report only.
    """
    say = progress or (lambda message: None)
    model = task.model(config.seed)
    baseline = finetune(model, {}, task.train, task.validation, config)
    say(f"head-only baseline {100 * baseline.accuracy:.2f} %")
    model.cpu()  # the proxy scores on the CPU, where the task's batches are
    start = time.perf_counter()
    scores = gradient_scores(model, [c.id for c in profile.candidates], task.train, batches, batch_size, config.seed)
    gradient_s = time.perf_counter() - start
    say(f"gradient scores for {len(scores)} candidates in {gradient_s:.1f} s")
    bundles, zero_roles = role_bundles(scores)
    single_ids = [cid for method, k in (singles or {}).items()
                  for cid in stratified([c.id for c in profile.candidates if c.method == method], scores, k)]
    mixed = mixtures(bundles)
    probes = {b.name: b.candidates for b in bundles} | mixed | {cid: [cid] for cid in single_ids}
    say(f"probing {len(bundles)} role bundles, {len(mixed)} mixtures, {len(single_ids)} single candidates "
        "and full fine-tuning")
    runs = [Run(name, candidates, config) for name, candidates in probes.items()] + [Run(FULL, None, config)]

    def fold(trained: list[TrainResult], probe_s: float) -> tuple[Profile, GainReport]:
        results = probed(probes, trained[:-1], baseline)
        full = ProbeResult(candidates=[], run=trained[-1], baseline_accuracy=baseline.accuracy,
                           baseline_loss=baseline.val_loss)
        say(f"full fine-tuning {100 * full.run.accuracy:.2f} %")

        def measured(probe: ProbeResult, role: str, setting: int | None = None) -> BundleResult:
            return BundleResult(role=role, setting=setting, points=probe.points, loss_decrease=probe.loss_decrease)

        calibration = fit_calibration([measured(results[b.name], b.role, b.setting) for b in bundles],
                                      measured(full, FULL),
                                      {name: measured(results[name], name) for name in mixed}, zero_roles)
        estimates = gradient_estimates(scores, calibration, score_details(batches, batch_size, config.seed))
        for cid in single_ids:
            estimates[cid].details["probe"] = results[cid].estimate().details
        params = {c.id: c.params for c in profile.candidates}

        def row(name: str, role: str | None = None, setting: int | None = None) -> ProbeRow:
            r = results[name]
            methods = {parse_id(c).method for c in r.candidates}
            return ProbeRow(name=name, method=methods.pop() if len(methods) == 1 else "mixed", role=role,
                            setting=setting, candidates=len(r.candidates), params=sum(params[c] for c in r.candidates),
                            score=sum(scores[c] for c in r.candidates), points=r.points,
                            val_loss_decrease=r.loss_decrease, calibrated=sum(estimates[c].gain for c in r.candidates))

        bundle_rows = [row(b.name, b.role, b.setting) for b in bundles]
        single_rows = [row(cid) for cid in single_ids]
        report = GainReport(
            baseline_accuracy=baseline.accuracy, baseline_loss=baseline.val_loss, gradient_s=gradient_s,
            probe_s=probe_s, probe_config=config, calibration=calibration, full_points=full.points,
            full_loss_decrease=full.loss_decrease, bundles=bundle_rows, mixtures=[row(name) for name in mixed],
            probes=single_rows, bundle_rankings=rankings(bundle_rows), single_rankings=rankings(single_rows))
        return with_gains(profile, estimates), report

    return FanOut(runs, fold)


def estimate_gains(task: Task, profile: Profile, config: TrainConfig, *, singles: dict[str, int] | None = None,
                   batches: int = PROXY_BATCHES, batch_size: int = PROXY_BATCH_SIZE, workers: int = 1,
                   progress: Callable[[str], None] | None = None) -> tuple[Profile, GainReport]:
    """The profile with calibrated gradient gains on every candidate, and the report of how they were made
    (`gradient_fanout`, its runs trained here or in `workers` forked processes)."""
    say = progress or (lambda message: None)
    fanout = gradient_fanout(task, profile, config, singles=singles, batches=batches, batch_size=batch_size,
                             progress=say)
    return run_here(task, fanout, workers, lambda done, total: say(f"probe {done}/{total}"))
