"""frontier() equals the brute-force Pareto set of gain against params."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings

from app.planning import problem_from_profile
from solver import Problem, frontier
from solver.examples import llama_like_problem
from tests.app.service_helpers import synthetic_profile
from tests.solver.brute import feasible_plans
from tests.solver.strategies import problems


def _pareto(data: dict, axis: str = "params") -> list[tuple[float, float]]:
    """Return (cost on `axis`, gain) of the brute-force Pareto points with positive gain."""
    data = {**data, "min_gain": 0.0}
    plans = sorted(feasible_plans(data), key=lambda p: (getattr(p, axis), -p.gain))
    points, best = [], 0.0
    for p in plans:
        if p.gain > best * (1 + 1e-12):
            points.append((getattr(p, axis), p.gain))
            best = p.gain
    return points


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(objective="gain", max_candidates=7))
def test_frontier_matches_brute_force(data: dict) -> None:
    result = frontier(Problem.model_validate(data), axis="params")
    expected = _pareto(data)
    assert result.complete
    got = [(p.params, p.gain) for p in result.points]
    assert len(got) == len(expected), (got, expected)
    for (gp, gg), (ep, eg) in zip(got, expected, strict=True):
        assert gp == ep and math.isclose(gg, eg, rel_tol=1e-9, abs_tol=1e-9)


def test_frontier_is_monotone_and_capped_by_max_points() -> None:
    problem = llama_like_problem(200)
    result = frontier(problem, axis="params", max_points=12)
    assert 1 <= len(result.points) <= 12
    params = [p.params for p in result.points]
    gains = [p.gain for p in result.points]
    assert params == sorted(params) and gains == sorted(gains)
    assert all(p.params <= problem.budget.params for p in result.points)


def test_frontier_with_more_points_than_asked_spans_the_whole_range() -> None:
    problem = llama_like_problem(200, seed=1)
    exact = frontier(problem, axis="params", max_points=400)
    sampled = frontier(problem, axis="params", max_points=8)
    assert exact.complete and len(exact.points) > 8
    assert not sampled.complete and 2 <= len(sampled.points) <= 8
    exact_gain = {p.params: p.gain for p in exact.points}
    for p in sampled.points:  # every sampled point is a true Pareto point
        assert p.params in exact_gain and math.isclose(p.gain, exact_gain[p.params], rel_tol=1e-9)
    # the samples reach down to the cheap end, not only the points nearest the budget
    assert sampled.points[0].params <= exact.points[len(exact.points) // 4].params


def test_frontier_along_flops_of_a_profile_matches_brute_force() -> None:
    """A profile's frontier along FLOPs (the API's /frontier?axis=flops): its LPs return counts a hair below 0,
    which the rounding incumbent once floored to -1 and crashed on."""
    data = problem_from_profile(synthetic_profile(), {"params": "100%"}).model_dump()
    result = frontier(Problem.model_validate(data), axis="flops")
    expected = _pareto(data, "flops")
    assert result.complete and len(result.points) == len(expected) > 10
    for p, (flops, gain) in zip(result.points, expected, strict=True):
        assert math.isclose(p.flops, flops, rel_tol=1e-12) and math.isclose(p.gain, gain, rel_tol=1e-9)
