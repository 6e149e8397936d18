"""The `weight-condition` signal (KappaTune-style): how well-conditioned each site's weight is; no data.

KappaTune (peft's `find_kappa_target_modules`) adapts the modules whose weights have the lowest
condition numbers κ = σ_max / σ_min (flattened to (out, rest); a vector, a norm's scale, read as
the diagonal matrix it multiplies by: max|w| / min|w|). A candidate scores sqrt(setting) / (1 +
log10 κ), dimensionless (1 for a perfectly conditioned weight at setting 1, 0 for a singular one):
lower κ, higher score, log-compressed because κ spans orders of magnitude across modules. Sites
without a weight score 0.
"""

from __future__ import annotations

import math

import torch

from profiler.gains.cheap import Signal, SignalInput, SignalResult, setting_scale
from profiler.gains.cost import Work


def condition_number(weight: torch.Tensor) -> float:
    """κ of a weight: ratio of extreme singular values of its (out, rest) matrix, or of |entries| for a vector;
    inf when singular."""
    w = weight.detach().double()
    values = w.abs().flatten() if w.dim() == 1 else torch.linalg.svdvals(w.reshape(w.shape[0], -1))
    low, high = float(values.min()), float(values.max())
    return high / low if low > 0 else math.inf


def condition_scores(inp: SignalInput) -> SignalResult:
    """Each candidate's sqrt(setting) / (1 + log10 κ) of its site's weight, with κ in its details."""
    kappas: dict[str, float] = {}
    for site in sorted({r.site for r in inp.refs}):
        weight = getattr(inp.encoder.get_submodule(site), "weight", None)
        kappas[site] = condition_number(weight) if isinstance(weight, torch.Tensor) else math.inf
    scores, details = {}, {}
    for r in inp.refs:
        kappa = kappas[r.site]
        scores[r.id] = setting_scale(r) / (1.0 + math.log10(kappa)) if math.isfinite(kappa) else 0.0
        details[r.id] = {"condition_number": kappa if math.isfinite(kappa) else None}
    return SignalResult(scores, Work(), details)


SIGNAL = Signal("weight-condition", "sqrt(setting) / (1 + log10 condition number) of each site's weight "
                "(KappaTune-style), dimensionless; no data", data=False, head=False, compute=condition_scores)
