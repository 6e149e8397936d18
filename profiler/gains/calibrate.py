"""Calibration: gradient scores -> accuracy points, fitted on a few probes.

A probe is a set of candidates of one method trained together (one candidate, or a bundle such as
"BitFit on every bias") with its measured gain in accuracy points. Per method m, gain ≈ a_m · score,
with a_m >= 0 fitted by least squares through the origin over that method's probes, a bundle's
score being the sum of its candidates' scores. Scores of different methods live in different
parameter spaces, so each gets its own scale; a method without probes takes the pooled scale.
Bundles carry most of the weight (their score sums are large), so the scale reflects how much of the
summed first-order score training actually realizes when many candidates train together; gains are
not additive, and single-candidate probes alone over-predict plans several-fold. Probes with
negative gains count as 0 (what the solver would be given).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from profiler.gains.estimate import GainEstimate
from profiler.locate import parse_id

Probe = tuple[list[str], float]  # candidate ids trained together (one method), accuracy points gained


class Calibration(BaseModel):
    """Points per unit score, by method, with the pooled fallback and how many probes each rests on."""

    scale: dict[str, float] = Field(default_factory=dict)
    probes: dict[str, int] = Field(default_factory=dict)
    pooled: float = 0.0

    def points(self, method: str, score: float) -> float:
        """Calibrated gain of a score, in accuracy points."""
        return self.scale.get(method, self.pooled) * score


def _through_origin(pairs: list[tuple[float, float]]) -> float:
    den = sum(s * s for s, _ in pairs)
    return max(0.0, sum(s * g for s, g in pairs) / den) if den > 0 else 0.0


def fit_calibration(scores: dict[str, float], probes: list[Probe]) -> Calibration:
    """Fit per-method scales from probes whose candidates all have scores and share one method."""
    by_method: dict[str, list[tuple[float, float]]] = {}
    for ids, points in probes:
        methods = {parse_id(cid).method for cid in ids}
        if len(methods) != 1:
            raise ValueError(f"a calibration probe must hold one method, got {sorted(methods)}")
        by_method.setdefault(methods.pop(), []).append((sum(scores[cid] for cid in ids), max(0.0, points)))
    pooled_pairs = [p for pairs in by_method.values() for p in pairs]
    return Calibration(scale={m: _through_origin(pairs) for m, pairs in by_method.items()},
                       probes={m: len(pairs) for m, pairs in by_method.items()},
                       pooled=_through_origin(pooled_pairs))


def gradient_estimates(scores: dict[str, float], calibration: Calibration, details: dict) -> dict[str, GainEstimate]:
    """Calibrated gradient-proxy estimates, each recording its raw score, scale and probe support."""
    out = {}
    for cid, score in scores.items():
        method = parse_id(cid).method
        scale = calibration.scale.get(method, calibration.pooled)
        out[cid] = GainEstimate(gain=scale * score, source="gradient", details={
            **details, "raw_score": score, "points_per_score": scale,
            "calibrated_on": calibration.probes.get(method, 0), "pooled_scale": method not in calibration.scale})
    return out
