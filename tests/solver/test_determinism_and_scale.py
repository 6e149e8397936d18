"""Equal problems give equal plans; LLaMA-shaped problems solve to proven optimality."""

from __future__ import annotations

import random

import pytest

from solver import Problem, solve
from solver.examples import llama_like_problem


def _shuffled_copy(problem: Problem) -> Problem:
    return Problem.model_validate(problem.model_dump())


@pytest.mark.parametrize("objective", ["gain", "efficiency"])
def test_same_problem_same_plan(objective: str) -> None:
    problem = llama_like_problem(200, objective=objective, min_gain_fraction=0.3, seed=3)
    first = solve(problem)
    for _ in range(2):
        again = solve(_shuffled_copy(problem))
        assert again.selected == first.selected
        assert again.gain == first.gain


def test_gain_ties_go_to_the_cheaper_plan() -> None:
    data = {
        "candidates": [
            {"id": "big", "method": "lora", "gain": 1, "params": 50, "flops": 5},
            {"id": "small", "method": "lora", "gain": 1, "params": 5, "flops": 5},
        ],
        "budget": {"params": 60, "flops": 6},
    }
    assert solve(Problem.model_validate(data)).selected == ["small"]


def test_llama_1200_gain_objective_is_proven_optimal() -> None:
    problem = llama_like_problem(1200)
    assert len(problem.candidates) == 1189
    plan = solve(problem)
    assert plan.status == "optimal"
    assert plan.bound is not None and plan.gain >= plan.bound * (1 - 1e-9)
    assert plan.params <= problem.budget.params and plan.flops <= problem.budget.flops


def test_llama_gain_beats_every_random_feasible_plan() -> None:
    """A cheap independent check at scale: no random greedy completion beats the optimum."""
    problem = llama_like_problem(200, seed=5)
    plan = solve(problem)
    rng = random.Random(0)
    cands = problem.candidates
    layers = {layer.index: layer.backward_flops for layer in problem.layers}
    for _ in range(200):
        order = rng.sample(range(len(cands)), len(cands))
        chosen, groups, params = [], set(), 0
        for i in order:
            c = cands[i]
            if c.group is not None and c.group in groups:
                continue
            trial = [*chosen, c]
            first = min(x.layer for x in trial)
            new_flops = sum(x.flops for x in trial) + sum(v for k, v in layers.items() if k >= first)
            if params + c.params <= problem.budget.params and new_flops <= problem.budget.flops:
                chosen, params = trial, params + c.params
                if c.group is not None:
                    groups.add(c.group)
        assert sum(c.gain for c in chosen) <= plan.gain + 1e-9


@pytest.mark.slow
def test_llama_1200_efficiency_with_min_gain_is_proven_optimal() -> None:
    problem = llama_like_problem(1200, objective="efficiency", min_gain_fraction=0.3)
    plan = solve(problem, max_time_s=120)
    assert plan.status == "optimal"
    assert plan.gain >= problem.min_gain
    assert plan.efficiency >= plan.bound * (1 - 1e-6)
