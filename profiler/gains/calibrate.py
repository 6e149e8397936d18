"""Calibration: gradient scores -> accuracy points, per role, from probes of whole roles.

A *role* is one kind of module under one method: the candidate's site with its layer indices
replaced by `*`, e.g. `lora @ encoder.layer.*.attention.self.value`. Roles, not methods, because
one method's modules differ by several times in value per parameter (LoRA on attention query/value
against LoRA on the feed-forward layers), and not single candidates, because one candidate moves a
short fine-tune's accuracy by less than its seed-to-seed noise while a role's bundle (its candidate
on every layer) moves it by points.

1. Each role is probed as a bundle at the smallest and the largest of its settings (once for a
   method without settings): its sites trained together, with the head.
2. A bundle's value comes from its validation-loss decrease, which is far less noisy than its
   accuracy gain: one factor k (accuracy points per nat), fitted through the origin over every
   probe (bundles, mixtures, full fine-tuning), turns each decrease into V = max(0, k·Δloss), in points.
3. Between probed settings V is interpolated linearly in log(setting); outside them it is held, not
   extrapolated (more rank can train worse in a short run, which the proxy cannot see).
4. Values do not add: every role alone buys a couple of points, all together far fewer than their
   sum (they fit the same task directions). Gains combine like independent chances of closing the
   gap to full fine-tuning (noisy-OR): with C the ceiling (full fine-tuning's value, probed the same
   way) a plan predicts C·(1 - Π(1 - V_i/C)). Its logarithm is additive, so each role enters the
   solver as W = -C·ln(1 - V/C) (≈ V for V ≪ C; a role at or above C counts as closing 99 % of
   the gap), and the plan with the largest summed W is the one with the largest predicted gain,
   `Calibration.predicted(plan gain)`. Gains stay in accuracy points: a plan's summed gain bounds
   its prediction from above (they agree for small plans), `predicted` is the saturated reading.
5. Settings do not combine like roles alone show: a role at rank 16 can beat rank 1 when trained
   alone and still make a plan of many roles at rank 16 train worse. Two mixtures are probed, every
   role at its smallest setting and every role at its largest (roles without settings in both), and
   each end gets a factor γ in [0, 1] on its values such that the noisy-OR prediction of the mixture
   equals its measured value (γ = 1 when the mixture does as well as predicted or better; roles
   without settings take the smallest end's γ, so a shortfall of the largest mixture is put on the
   settings). The corrected values are the role's curve.
6. Within a role, the proxy shares W among the sites: gain(site, s) = W_role(s) · score(site, s) /
   Σ score(role's sites at s). A role whose summed score is 0 (attention key biases, which the
   softmax ignores; up to rounding: below 1e-9 of the largest role's sum) is worth 0 and is not probed.

Why the proxy only shares within a role: training is AdamW, which normalizes gradient scale, so
the raw score's magnitude does not compare across kinds of module (LoRA on attention queries scores
~100x lower than on values and trains as well); between layers of one kind it does.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict

from pydantic import BaseModel, Field

from profiler.candidates import CandidateRef, parse_id
from profiler.gains.estimate import GainEstimate

MAX_GAP_CLOSED = 0.99  # the share of the gap to the ceiling that one role can close
ZERO_SCORE = 1e-9  # a role whose summed score is below this share of the largest role's is worth 0
LOSS_POINTS_PER_NAT = 100.0
"""Points per nat when no probe moved accuracy at all but one lowered the loss: gains are then hundredths of a
nat of validation loss (`LOSS_UNIT`)."""
LOSS_UNIT = "centinats of validation loss"
_LAYER_INDEX = re.compile(r"(?<![^.])\d+(?![^.])")  # a whole dotted component that is a number


def setting_key(setting: int | None) -> int:
    """Sort key of settings: None (a method without settings) first, then ascending."""
    return -1 if setting is None else setting


def curve_value(curve: list[tuple[int | None, float]], setting: int | None) -> float:
    """A value curve [(setting, value)], by setting, read at `setting`: linear in log(setting) between its
    points, held outside them (0 for an empty curve)."""
    if not curve:
        return 0.0
    if setting is None or len(curve) == 1 or curve[0][0] is None:
        return curve[0][1]
    x = math.log(setting)
    points = [(math.log(s), v) for s, v in curve]  # type: ignore[arg-type]
    if x <= points[0][0]:
        return points[0][1]
    for (x0, v0), (x1, v1) in itertools.pairwise(points):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            return (1 - t) * v0 + t * v1  # a convex combination: never below 0 by rounding
    return points[-1][1]


def role_of(ref: CandidateRef) -> str:
    """`method @ site` with every numeric path component (a layer index) replaced by `*`."""
    return f"{ref.method} @ {_LAYER_INDEX.sub('*', ref.site)}"


class BundleSpec(BaseModel):
    """A calibration bundle: one role's candidates at one setting (None for a method without settings)."""

    role: str
    setting: int | None
    candidates: list[str]

    @property
    def name(self) -> str:
        """`role` or `role at setting`."""
        return self.role if self.setting is None else f"{self.role} at {self.setting}"


class BundleResult(BaseModel):
    """What a bundle's probe measured against head only: accuracy points and validation-loss nats."""

    role: str
    setting: int | None
    points: float
    loss_decrease: float


class Calibration(BaseModel):
    """Points per nat, the ceiling, each role's values at its probed settings, and the roles worth 0."""

    points_per_nat: float = Field(ge=0)
    unit: str = Field(default="accuracy points", description=f"What the values measure: accuracy points, or {LOSS_UNIT} "
                      "when no probe moved accuracy (`points_per_nat`).")
    ceiling_points: float = Field(ge=0, description="Full fine-tuning's value (or the best role's, if higher), points.")
    combination: dict[str, float] = Field(
        default_factory=dict, description="Mixture name -> the factor γ its measurement put on its end's values.")
    curves: dict[str, list[tuple[int | None, float]]] = Field(
        default_factory=dict, description="role -> [(setting, value in accuracy points)], by setting.")
    zero_roles: list[str] = Field(default_factory=list, description="Roles whose summed proxy score is 0.")

    def value(self, role: str, setting: int | None) -> float:
        """A role's value at `setting`, accuracy points (0 for a role that was not probed)."""
        return curve_value(self.curves.get(role, []), setting)

    def weight(self, value: float) -> float:
        """A value (points, alone) as its additive noisy-OR weight -C·ln(1 - V/C), in points."""
        if self.ceiling_points <= 0:
            return 0.0
        return -self.ceiling_points * math.log1p(-min(value / self.ceiling_points, MAX_GAP_CLOSED))

    def predicted(self, gain: float) -> float:
        """The saturated accuracy gain C·(1 - exp(-gain/C)) of a plan whose gains sum to `gain`, points."""
        return self.ceiling_points * -math.expm1(-gain / self.ceiling_points) if self.ceiling_points > 0 else 0.0

    def combined(self, values: list[float]) -> float:
        """The noisy-OR prediction of roles with these values (points, alone) trained together, points."""
        return self.predicted(sum(self.weight(v) for v in values))


def _score_sums(scores: dict[str, float]) -> dict[tuple[str, int | None], float]:
    sums: dict[tuple[str, int | None], float] = defaultdict(float)
    for cid, score in scores.items():
        ref = parse_id(cid)
        sums[(role_of(ref), ref.setting)] += score
    return sums


def role_bundles(scores: dict[str, float]) -> tuple[list[BundleSpec], list[str]]:
    """The bundles to probe (each role at its smallest and largest setting) and the roles worth 0."""
    members: dict[str, dict[int | None, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cid in scores:
        ref = parse_id(cid)
        members[role_of(ref)][ref.setting].append(cid)
    sums = _score_sums(scores)
    floor = ZERO_SCORE * max(sums.values(), default=0.0)
    bundles, zero = [], []
    for role, by_setting in members.items():
        if all(sums[(role, s)] <= floor for s in by_setting):
            zero.append(role)
            continue
        settings = sorted(by_setting, key=setting_key)
        for setting in dict.fromkeys((settings[0], settings[-1])):
            bundles.append(BundleSpec(role=role, setting=setting, candidates=sorted(by_setting[setting])))
    return bundles, sorted(zero)


SMALLEST, LARGEST = "every role at its smallest setting", "every role at its largest setting"


def mixtures(bundles: list[BundleSpec]) -> dict[str, list[str]]:
    """The mixtures to probe (name -> candidate ids), from `role_bundles`' bundles (smallest setting first
    per role): every role at its smallest setting, and, when some role has two, every role at its largest."""
    by_role: dict[str, list[BundleSpec]] = defaultdict(list)
    for b in bundles:
        by_role[b.role].append(b)
    smallest = [cid for bs in by_role.values() for cid in bs[0].candidates]
    largest = [cid for bs in by_role.values() for cid in bs[-1].candidates]
    return {SMALLEST: smallest} | ({LARGEST: largest} if largest != smallest else {})


def _factor(calibration: Calibration, fixed: list[float], scaled: list[float], measured: float) -> float:
    """γ in [0, 1] with combined(fixed + γ·scaled) = measured, by bisection (monotone in γ)."""
    def at(g: float) -> float:
        return calibration.combined(fixed + [g * v for v in scaled])

    if at(1.0) <= measured:
        return 1.0
    if at(0.0) >= measured:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at(mid) < measured else (lo, mid)
    return (lo + hi) / 2


def _only_loss_moved(fitted: list[BundleResult]) -> bool:
    """Whether no probe changed accuracy at all while one lowered the loss (the gains then in `LOSS_UNIT`)."""
    return all(r.points == 0 for r in fitted) and any(r.loss_decrease > 0 for r in fitted)


def points_per_nat(fitted: list[BundleResult]) -> float:
    """Accuracy points per nat of validation-loss decrease: least squares through the origin over `fitted`,
    floored at 0 (0 when no probe moved the loss). When no probe changed accuracy at all (a causal LM's exact
    match, which a short run seldom moves on long completions) and one lowered the loss: LOSS_POINTS_PER_NAT,
    the gains then in `LOSS_UNIT`."""
    den = sum(r.loss_decrease ** 2 for r in fitted)
    if den == 0:
        return 0.0
    if _only_loss_moved(fitted):
        return LOSS_POINTS_PER_NAT
    return max(0.0, sum(r.loss_decrease * r.points for r in fitted) / den)


def gain_unit(fitted: list[BundleResult]) -> str:
    """What the gains calibrated on `fitted` measure: accuracy points, or `LOSS_UNIT` (`points_per_nat`)."""
    return LOSS_UNIT if _only_loss_moved(fitted) else "accuracy points"


def fit_calibration(results: list[BundleResult], ceiling: BundleResult, mixed: dict[str, BundleResult],
                    zero_roles: list[str] | None = None) -> Calibration:
    """The calibration from the role bundles, full fine-tuning (the ceiling) and the mixtures.

    Points per nat: least squares through the origin over every probe. Ceiling: full fine-tuning's
    value, at least the best role's. Curves: each role's values at its probed settings, times its
    end's combination factor (module docstring, step 5).
    """
    fitted = [*results, ceiling, *mixed.values()]
    k = points_per_nat(fitted)
    raw: dict[str, list[tuple[int | None, float]]] = defaultdict(list)
    for r in sorted(results, key=lambda r: setting_key(r.setting)):
        raw[r.role].append((r.setting, max(0.0, k * r.loss_decrease)))
    best = max((v for c in raw.values() for _, v in c), default=0.0)
    calibration = Calibration(points_per_nat=k, unit=gain_unit(fitted), ceiling_points=max(k * ceiling.loss_decrease, best),
                              zero_roles=sorted(zero_roles or []))
    value = {name: max(0.0, k * r.loss_decrease) for name, r in mixed.items()}
    low = _factor(calibration, [], [c[0][1] for c in raw.values()], value[SMALLEST]) if SMALLEST in mixed else 1.0
    high = _factor(calibration, [low * c[0][1] for c in raw.values() if len(c) == 1],
                   [c[-1][1] for c in raw.values() if len(c) > 1], value[LARGEST]) if LARGEST in mixed else low
    curves = {role: [(c[0][0], low * c[0][1])] + ([(c[-1][0], high * c[-1][1])] if len(c) > 1 else [])
              for role, c in raw.items()}
    return calibration.model_copy(update={"curves": curves, "combination": {
        name: f for name, f in ((SMALLEST, low), (LARGEST, high)) if name in mixed}})


def gradient_estimates(scores: dict[str, float], calibration: Calibration, details: dict) -> dict[str, GainEstimate]:
    """Calibrated gradient-proxy estimates: the role's noisy-OR weight times the candidate's share of the
    role's score; each records its raw score, role, role value and weight, and share."""
    sums = _score_sums(scores)
    out = {}
    for cid, score in scores.items():
        ref = parse_id(cid)
        role = role_of(ref)
        total = sums[(role, ref.setting)]
        value = calibration.value(role, ref.setting)
        weight = calibration.weight(value)
        share = score / total if total > 0 else 0.0
        out[cid] = GainEstimate(gain=weight * share, source="gradient", details={
            **details, "raw_score": score, "role": role, "role_value_points": value, "role_weight_points": weight,
            "share_of_role": share, "ceiling_points": calibration.ceiling_points,
            "role_probed_at": [s for s, _ in calibration.curves.get(role, [])]})
    return out
