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
   bundle, turns each decrease into V = max(0, k·Δloss), in accuracy points.
3. Between probed settings V is interpolated linearly in log(setting); outside them it is held, not
   extrapolated (more rank can train worse in a short run, which the proxy cannot see).
4. Within a role, the proxy shares V among the sites: gain(site, s) = V_role(s) · score(site, s) /
   Σ score(role's sites at s). A role whose summed score is 0 (attention key biases, which the
   softmax ignores; up to rounding: below 1e-9 of the largest role's sum) is worth 0 and is not probed.

The solver adds the gains of different roles; a plan of many roles realizes less than that sum,
so its predicted total is an upper estimate (`validate_plan` measures the realized one).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict

from pydantic import BaseModel, Field

from profiler.gains.estimate import GainEstimate
from profiler.locate import CandidateRef, parse_id

ZERO_SCORE = 1e-9  # a role whose summed score is below this share of the largest role's is worth 0
_LAYER_INDEX = re.compile(r"(?<![^.])\d+(?![^.])")  # a whole dotted component that is a number


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
    """Points per nat of loss decrease, each role's values at its probed settings, and the roles worth 0."""

    points_per_nat: float = Field(ge=0)
    curves: dict[str, list[tuple[int | None, float]]] = Field(
        default_factory=dict, description="role -> [(setting, value in accuracy points)], by setting.")
    zero_roles: list[str] = Field(default_factory=list, description="Roles whose summed proxy score is 0.")

    def value(self, role: str, setting: int | None) -> float:
        """A role's value at `setting`, accuracy points (0 for a role that was not probed)."""
        curve = self.curves.get(role)
        if not curve:
            return 0.0
        if setting is None or len(curve) == 1 or curve[0][0] is None:
            return curve[0][1]
        x = math.log(setting)
        points = [(math.log(s), v) for s, v in curve if s is not None]
        if x <= points[0][0]:
            return points[0][1]
        for (x0, v0), (x1, v1) in itertools.pairwise(points):
            if x <= x1:
                return v0 + (v1 - v0) * (x - x0) / (x1 - x0)
        return points[-1][1]


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
        settings = sorted(by_setting, key=lambda s: -1 if s is None else s)
        for setting in dict.fromkeys((settings[0], settings[-1])):
            bundles.append(BundleSpec(role=role, setting=setting, candidates=sorted(by_setting[setting])))
    return bundles, sorted(zero)


def fit_calibration(results: list[BundleResult], zero_roles: list[str] | None = None) -> Calibration:
    """The points-per-nat factor (least squares through the origin) and every role's value curve."""
    den = sum(r.loss_decrease ** 2 for r in results)
    k = max(0.0, sum(r.loss_decrease * r.points for r in results) / den) if den > 0 else 0.0
    curves: dict[str, list[tuple[int | None, float]]] = defaultdict(list)
    for r in results:
        curves[r.role].append((r.setting, max(0.0, k * r.loss_decrease)))
    return Calibration(points_per_nat=k, zero_roles=sorted(zero_roles or []),
                       curves={role: sorted(c, key=lambda sv: -1 if sv[0] is None else sv[0])
                               for role, c in curves.items()})


def gradient_estimates(scores: dict[str, float], calibration: Calibration, details: dict) -> dict[str, GainEstimate]:
    """Calibrated gradient-proxy estimates, each recording its raw score, role, role value and share."""
    sums = _score_sums(scores)
    out = {}
    for cid, score in scores.items():
        ref = parse_id(cid)
        role = role_of(ref)
        total = sums[(role, ref.setting)]
        value = calibration.value(role, ref.setting)
        share = score / total if total > 0 else 0.0
        out[cid] = GainEstimate(gain=value * share, source="gradient", details={
            **details, "raw_score": score, "role": role, "role_value_points": value, "share_of_role": share,
            "role_probed_at": [s for s, _ in calibration.curves.get(role, [])]})
    return out
