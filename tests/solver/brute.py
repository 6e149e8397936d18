"""An independent brute-force reference for small planning problems."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

# The solver rounds non-integral rows at 2**-40 of their scale, so a plan
# within ~1e-12 of a cap may go either way. Tests bracket the solver between
# the brute-force optimum with caps tightened by SLACK and loosened by SLACK.
SLACK = 1e-9


@dataclass(frozen=True)
class Ref:
    """A subset and its totals, computed directly from the problem dict."""

    ids: frozenset[str]
    gain: float
    params: float
    flops: float
    latency: float
    memory: float
    efficiency: float | None


def evaluate(problem: dict, chosen: list[dict]) -> Ref:
    """Return the totals of `chosen` candidates: layer l paid if any chosen layer <= l, each saved input once."""
    reach = [c["layer"] for c in chosen if c.get("layer") is not None]
    saved = {c["saved_input"] for c in chosen if c.get("saved_input") is not None}
    paid = [l for l in problem.get("layers", []) if reach and min(reach) <= l["index"]]
    b = problem["budget"]
    gain = sum(c["gain"] for c in chosen)
    params = sum(c["params"] for c in chosen)
    flops = sum(c["flops"] for c in chosen) + sum(l.get("backward_flops", 0) for l in paid)
    eff = None
    if chosen:
        eff = gain / math.sqrt((params / b["params"]) * (flops / b["flops"]))
    return Ref(
        ids=frozenset(c["id"] for c in chosen),
        gain=gain,
        params=params,
        flops=flops,
        latency=sum(c.get("latency_ms", 0) for c in chosen),
        memory=sum(c.get("memory_bytes", 0) for c in chosen)
        + sum(l.get("memory_bytes", 0) for l in paid)
        + sum(i["memory_bytes"] for i in problem.get("saved_inputs", []) if i["key"] in saved),
        efficiency=eff,
    )


def feasible_plans(problem: dict, slack: float = 0.0) -> list[Ref]:
    """Return every subset that respects groups, caps and min_gain, caps scaled by 1+slack."""
    cands = problem["candidates"]
    b = problem["budget"]
    out = []
    for r in range(len(cands) + 1):
        for combo in itertools.combinations(cands, r):
            groups = [c["group"] for c in combo if c.get("group") is not None]
            if len(groups) != len(set(groups)):
                continue
            ref = evaluate(problem, list(combo))
            caps = [(ref.params, b["params"]), (ref.flops, b["flops"])]
            if b.get("latency_ms") is not None:
                caps.append((ref.latency, b["latency_ms"]))
            if b.get("memory_bytes") is not None:
                caps.append((ref.memory, b["memory_bytes"]))
            if any(v > cap * (1 + slack) for v, cap in caps):
                continue
            if ref.gain < problem.get("min_gain", 0) * (1 - slack):
                continue
            out.append(ref)
    return out


def best_gain(problem: dict, slack: float = 0.0) -> float | None:
    """Return the max total gain over feasible plans, or None if none is feasible."""
    plans = feasible_plans(problem, slack)
    return max((p.gain for p in plans), default=None)


def best_efficiency(problem: dict, slack: float = 0.0) -> tuple[float, float] | None:
    """Return (max M over non-empty feasible plans, max gain among plans tied at that M)."""
    plans = [p for p in feasible_plans(problem, slack) if p.efficiency is not None]
    if not plans:
        return None
    top = max(p.efficiency for p in plans)
    tied = [p.gain for p in plans if p.efficiency >= top * (1 - 1e-12)]
    return top, max(tied)
