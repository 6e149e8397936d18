"""Gains from data, end to end: head-only baseline, gradient proxy on every candidate, probes, calibration.

1. Train the head alone (the probes' baseline); with that fitted head, score every candidate by the
   gradient proxy on a few batches (`gradient.gradient_scores`).
2. Probe single candidates spread over the proxy's ranking of each method (how well the proxy ranks),
   and one bundle per method: all its candidates at one setting (how much of the summed score a plan
   of many candidates realizes; see `calibrate`).
3. Fit per-method scales on all probes; every candidate gets a calibrated `gradient` estimate, and
   the probed ones carry their probe's result in the details.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, Field

from profiler.finetune import TrainConfig, finetune
from profiler.gains.calibrate import Calibration, fit_calibration, gradient_estimates
from profiler.gains.estimate import with_gains
from profiler.gains.gradient import gradient_scores, score_details
from profiler.gains.probe import probe_gains
from profiler.locate import parse_id
from profiler.schema import Profile
from profiler.task import Task


class ProbeRow(BaseModel):
    """A probe's candidates (one, or a bundle), summed proxy score and params, and what it measured."""

    name: str
    candidates: int
    params: int
    score: float
    points: float = Field(description="Validation accuracy gain over head only, accuracy points.")
    val_loss_decrease: float = Field(description="Validation cross-entropy decrease over head only, nats.")
    calibrated: float = Field(description="The calibrated gradient estimate of the same candidates, points.")


class GainReport(BaseModel):
    """How the gains were estimated, how long it took, and how well the proxy ranks the probes."""

    baseline_accuracy: float
    baseline_loss: float
    gradient_s: float
    probe_s: float
    probe_config: TrainConfig
    calibration: Calibration
    probes: list[ProbeRow]
    bundles: list[ProbeRow]
    spearman_points: float | None = Field(description="Calibrated proxy vs single-probe accuracy gains, all methods.")
    spearman_loss: float | None = Field(description="Calibrated proxy vs single-probe validation-loss decreases.")
    spearman_lora_points: float | None = Field(description="Raw proxy vs accuracy gains over the LoRA probes.")


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


def stratified(ids: list[str], scores: dict[str, float], k: int) -> list[str]:
    """k ids spread evenly over the ranking of their scores (the top one when k is 1)."""
    ranked = sorted(ids, key=lambda i: scores[i])
    if k >= len(ranked):
        return ranked
    return [ranked[round(j * (len(ranked) - 1) / (k - 1))] for j in range(k)] if k > 1 else ranked[-1:]


def bundle_of(profile: Profile, method: str, setting: int) -> list[str]:
    """Every candidate of `method`, at `setting` where the method has settings (the closest one per group)."""
    chosen: dict[str, tuple[int, str]] = {}
    for c in profile.candidates:
        if c.method != method:
            continue
        ref = parse_id(c.id)
        distance = 0 if ref.setting is None else abs(ref.setting - setting)
        key = c.group or c.id
        if key not in chosen or distance < chosen[key][0]:
            chosen[key] = (distance, c.id)
    return [cid for _, cid in chosen.values()]


def estimate_gains(task: Task, profile: Profile, config: TrainConfig, probes_per_method: dict[str, int],
                   bundle_setting: int = 2, batches: int = 4, batch_size: int = 32, workers: int = 1,
                   progress: Callable[[str], None] | None = None) -> tuple[Profile, GainReport]:
    """The profile with calibrated gradient gains on every candidate, and the report of how they were made."""
    say = progress or (lambda message: None)
    model = task.classifier(config.seed)
    baseline = finetune(model, {}, task.train, task.validation, config)
    say(f"head-only baseline {100 * baseline.accuracy:.2f} %")
    start = time.perf_counter()
    scores = gradient_scores(model, [c.id for c in profile.candidates], task.train, batches, batch_size, config.seed)
    gradient_s = time.perf_counter() - start
    say(f"gradient scores for {len(scores)} candidates in {gradient_s:.1f} s")
    singles = [cid for method, k in probes_per_method.items()
               for cid in stratified([c.id for c in profile.candidates if c.method == method], scores, k)]
    bundles = {f"every {method}" + (f" at {bundle_setting}" if any(c.method == method and c.group for c in
                                                                    profile.candidates) else ""):
               bundle_of(profile, method, bundle_setting) for method in probes_per_method}
    start = time.perf_counter()
    results = probe_gains(task, {cid: [cid] for cid in singles} | bundles, config, workers, baseline,
                          progress=lambda d, n: say(f"probe {d}/{n}"))
    probe_s = time.perf_counter() - start
    calibration = fit_calibration(scores, [(r.candidates, r.points) for r in results.values()])
    estimates = gradient_estimates(scores, calibration, score_details(batches, batch_size, config.seed))
    for cid in singles:  # single-candidate probes are too noisy to use as gains: recorded beside the estimate
        estimates[cid].details["probe"] = results[cid].estimate().details
    params = {c.id: c.params for c in profile.candidates}

    def row(name: str) -> ProbeRow:
        r = results[name]
        return ProbeRow(name=name, candidates=len(r.candidates), params=sum(params[c] for c in r.candidates),
                        score=sum(scores[c] for c in r.candidates), points=r.points, val_loss_decrease=r.loss_decrease,
                        calibrated=sum(estimates[c].gain for c in r.candidates))

    rows = [row(cid) for cid in singles]
    lora = [r for r in rows if parse_id(r.name).method == "lora"]
    report = GainReport(
        baseline_accuracy=baseline.accuracy, baseline_loss=baseline.val_loss, gradient_s=gradient_s, probe_s=probe_s,
        probe_config=config, calibration=calibration, probes=rows, bundles=[row(name) for name in bundles],
        spearman_points=spearman([r.calibrated for r in rows], [r.points for r in rows]),
        spearman_loss=spearman([r.calibrated for r in rows], [r.val_loss_decrease for r in rows]),
        spearman_lora_points=spearman([r.score for r in lora], [r.points for r in lora]))
    return with_gains(profile, estimates), report
