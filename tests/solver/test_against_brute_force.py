"""solve() equals an independent brute-force enumeration on small problems."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings

from solver import Problem, knapsack, solve
from tests.solver.brute import SLACK, best_efficiency, best_gain, evaluate, feasible_plans
from tests.solver.strategies import problems

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# How a part is solved: as configured, by the dynamic program wherever it keeps few enough states, or by CP-SAT.
ENGINES = {
    "as configured": {},
    "dynamic program first": {"_DP_GROUPS_PER_CLASS": math.inf},
    "CP-SAT only": {"_DP_GROUPS_PER_CLASS": 0.0},
}


@contextmanager
def _engine(name: str) -> Iterator[None]:
    """Set the knapsack module's constants that choose how parts are solved, restoring them after."""
    saved = {key: getattr(knapsack, key) for key in ENGINES[name]}
    for key, value in ENGINES[name].items():
        setattr(knapsack, key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(knapsack, key, value)


def _check_plan_totals(data: dict, plan) -> None:
    """The plan is feasible, and its totals equal a direct recomputation of its selection."""
    chosen = [c for c in data["candidates"] if c["id"] in set(plan.selected)]
    ref = evaluate(data, chosen)
    assert ref.ids in {p.ids for p in feasible_plans(data)}
    assert plan.params == ref.params
    assert math.isclose(plan.gain, ref.gain, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(plan.flops, ref.flops, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(plan.memory_bytes, ref.memory, rel_tol=1e-12, abs_tol=1e-12)


def _settled_as_infeasible(plan, tight, loose) -> bool:
    """Check the cases where some bracket has no feasible plan; True when nothing is left to check."""
    if loose is None:
        assert plan.status == "infeasible" and plan.selected == []
        return True
    if plan.status == "infeasible":
        assert tight is None
        return True
    return False


@pytest.mark.parametrize("engine", ENGINES)
@_SETTINGS
@given(data=problems(objective="gain"))
def test_gain_objective_matches_brute_force(engine: str, data: dict) -> None:
    with _engine(engine):
        _check_gain_plan(data)


@settings(_SETTINGS, max_examples=300)
@given(problems(objective="gain", memory_bound=True))
def test_saved_inputs_paid_once_under_a_memory_cap(data: dict) -> None:
    _check_gain_plan(data)


def _check_gain_plan(data: dict) -> None:
    """The plan's gain lies between the brute-force optima of the tightened and loosened caps."""
    plan = solve(Problem.model_validate(data))
    tight, loose = best_gain(data, -SLACK), best_gain(data, SLACK)
    if _settled_as_infeasible(plan, tight, loose):
        return
    assert plan.status == "optimal"
    assert plan.gain >= (tight or 0.0) - 1e-9 * max(1.0, tight or 0.0)
    assert plan.gain <= loose + 1e-9 * max(1.0, loose)
    _check_plan_totals(data, plan)


@pytest.mark.parametrize("engine", ENGINES)
@_SETTINGS
@given(data=problems(objective="efficiency"))
def test_efficiency_objective_matches_brute_force(engine: str, data: dict) -> None:
    with _engine(engine):
        plan = solve(Problem.model_validate(data))
    tight, loose = best_efficiency(data, -SLACK), best_efficiency(data, SLACK)
    if _settled_as_infeasible(plan, tight, loose):
        return
    assert plan.status == "optimal" and plan.selected
    assert plan.efficiency <= loose[0] * (1 + 1e-12)
    if tight is not None:
        assert plan.efficiency >= tight[0] * (1 - 2e-6)
        if math.isclose(tight[0], loose[0], rel_tol=1e-12):
            assert plan.gain >= tight[1] - 1e-9, "ties must go to the larger gain"
    assert plan.gain >= data["min_gain"] * (1 - 1e-12)
    _check_plan_totals(data, plan)


def test_efficiency_prefers_larger_gain_among_proportional_ties() -> None:
    # a, b and a+b all have M = 1; a+b has the largest gain.
    data = {
        "candidates": [
            {"id": "a", "method": "lora", "gain": 1, "params": 1, "flops": 1},
            {"id": "b", "method": "lora", "gain": 2, "params": 2, "flops": 2},
        ],
        "budget": {"params": 1, "flops": 1},
        "objective": "efficiency",
    }
    data["budget"] = {"params": 3, "flops": 3}
    plan = solve(Problem.model_validate(data))
    assert sorted(plan.selected) == ["a", "b"]
    assert math.isclose(plan.efficiency, 3.0)


def test_shared_layer_cost_makes_efficiency_choose_a_union() -> None:
    # Each candidate alone pays the big layer-0 backward cost; together they share it.
    data = {
        "candidates": [
            {"id": "a", "method": "lora", "layer": 0, "gain": 1, "params": 1, "flops": 1},
            {"id": "b", "method": "lora", "layer": 0, "gain": 1, "params": 1, "flops": 1},
        ],
        "layers": [{"index": 0, "backward_flops": 100}],
        "budget": {"params": 10, "flops": 1000},
        "objective": "efficiency",
    }
    plan = solve(Problem.model_validate(data))
    assert sorted(plan.selected) == ["a", "b"]
    assert plan.flops == 102


def test_min_gain_unreachable_is_infeasible() -> None:
    data = {
        "candidates": [{"id": "a", "method": "bitfit", "gain": 1, "params": 1, "flops": 1}],
        "budget": {"params": 10, "flops": 10},
        "objective": "gain",
        "min_gain": 2,
    }
    for objective in ("gain", "efficiency"):
        data["objective"] = objective
        plan = solve(Problem.model_validate(data))
        assert plan.status == "infeasible" and plan.selected == [] and plan.efficiency is None
