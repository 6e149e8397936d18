"""solve() proves the same gain optimum as an independent MIP solved by HiGHS, on instances too large for brute
force: distinct gains (where reduced-cost fixing and the rounding incumbent do the work), gains tied by method
(where classes of interchangeable groups do), and a memory cap on saved inputs (where folding does)."""

from __future__ import annotations

import pytest

from solver import Problem, solve
from solver.examples import llama_like_problem
from solver.reference import highs_gain


def _tied(problem: Problem) -> Problem:
    """The problem with one gain per (method, rank): every layer's copies of a module interchangeable."""
    gains = {}
    candidates = []
    for c in problem.candidates:
        key = (c.method, (c.config or {}).get("rank"))
        gains.setdefault(key, round(0.2 + 0.1 * len(gains), 3))
        candidates.append(c.model_copy(update={"gain": gains[key]}))
    return problem.model_copy(update={"candidates": candidates})


def _shared_inputs(problem: Problem) -> Problem:
    """q, k and v of each layer save one input; a memory cap a little below what the plan without a cap uses
    makes it count."""
    candidates = []
    for c in problem.candidates:
        site = c.site or ""
        shared = c.layer is not None and site.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj")
        candidates.append(c.model_copy(update={"saved_input": f"{c.layer}:x" if shared else None}))
    layers = sorted({c.layer for c in candidates if c.saved_input})
    inputs = [{"key": f"{k}:x", "memory_bytes": 2.0e6} for k in layers]
    shared = Problem.model_validate({**problem.model_dump(), "candidates": [c.model_dump() for c in candidates],
                                     "saved_inputs": inputs})
    memory = 0.97 * solve(shared).memory_bytes
    return shared.model_copy(update={"budget": shared.budget.model_copy(update={"memory_bytes": memory})})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", ["distinct", "tied", "shared inputs"])
def test_gain_optimum_equals_highs(seed: int, shape: str) -> None:
    problem = llama_like_problem(200, seed=seed)
    problem = {"distinct": lambda p: p, "tied": _tied, "shared inputs": _shared_inputs}[shape](problem)
    plan = solve(problem, max_time_s=60)
    _, status, gain = highs_gain(problem, 60)
    assert plan.status == "optimal" and status == "optimal" and plan.selected
    assert plan.gain == pytest.approx(gain, rel=1e-6), (plan.gain, gain)
