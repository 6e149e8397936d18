"""problem_from_profile: relative budgets, gain precedence, missing gains."""

from __future__ import annotations

import pytest

from app.planning import PlanningError, gain_sources, parse_amount, problem_from_profile
from app.planning.problem import parse_size
from tests.app.service_helpers import synthetic_profile


@pytest.mark.parametrize(
    ("value", "whole", "expected"),
    [(5, 100, 5.0), ("0.5%", 1e6, 5e3), ("1e3", 1, 1e3), (" 20 % ", 50, 10.0), (".5%", 200, 1.0)],
)
def test_amounts(value, whole, expected) -> None:
    assert parse_amount(value, whole) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["", "%", "abc", "-1", "0%", "1e999", 0, -2.0, "5%%"])
def test_bad_amounts(value) -> None:
    with pytest.raises(ValueError):
        parse_amount(value, 100)


def test_relative_budgets_use_params_and_three_forward_passes() -> None:
    problem = problem_from_profile(synthetic_profile(), {"params": "0.5%", "flops": "10%"})
    assert problem.budget.params == 500
    assert problem.budget.flops == pytest.approx(0.1 * 3e9)
    assert problem_from_profile(synthetic_profile(), {"params": 100}).budget.flops == 3e9
    assert len(problem.candidates) == 9 and len(problem.layers) == 3


def test_gain_precedence() -> None:
    profile = synthetic_profile()
    gains = {"candidates": {"layer.0.q:lora:r4": 9.0},
             "methods": {"lora": {"layers": {1: 2.0}}, "bitfit": 0.0}}
    problem = problem_from_profile(profile, {"params": 100}, "efficiency", gains, min_gain=1.0)
    by_id = {c.id: c.gain for c in problem.candidates}
    assert by_id["layer.0.q:lora:r4"] == 9.0
    assert by_id["layer.1.q:lora:r8"] == 2.0
    assert by_id["layer.2.q:lora:r8"] == pytest.approx(0.82)
    assert by_id["layer.2:bitfit"] == 0.0
    assert problem.objective == "efficiency" and problem.min_gain == 1.0
    assert gain_sources(profile, gains) == {
        "candidate": 1, "method": 3, "method-layer": 2, "profile": 3, "missing": 0,
    }


def test_missing_and_unknown_gains_name_the_candidates() -> None:
    bare = synthetic_profile(gains=False)
    with pytest.raises(PlanningError, match="no gain for 3 of 9.*'layer.0:bitfit'"):
        problem_from_profile(bare, {"params": 1}, gains={"methods": {"lora": 1.0}})
    with pytest.raises(PlanningError, match="unknown candidate id"):
        problem_from_profile(bare, {"params": 1}, gains={"candidates": {"zz": 1.0}})
    with pytest.raises(PlanningError, match="not in this profile"):
        problem_from_profile(bare, {"params": 1}, gains={"methods": {"prefix": 1.0}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("24GiB", 24 * 1024**3), ("80 GB", 80e9), ("512mib", 512 * 1024**2), (1e9, 1e9), ("1.5TiB", 1.5 * 1024**4)],
)
def test_sizes(value, expected) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["", "GiB", "24 GiBs", "-1GB", "0", 0, "1e999B"])
def test_bad_sizes(value) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


def _with_fixed_memory(weights: float, state: float):
    profile = synthetic_profile()
    fixed = profile.memory.fixed.model_copy(update={"weights": weights, "trainable_state": state, "logits": 1e6})
    return profile.model_copy(update={"memory": profile.memory.model_copy(update={"fixed": fixed})})


def test_total_memory_budget_leaves_the_adapters_what_the_fixed_parts_do_not_take() -> None:
    profile = _with_fixed_memory(weights=16e9, state=2e6)
    problem = problem_from_profile(profile, {"params": 100, "memory": "24GiB"})
    assert problem.budget.memory_bytes == pytest.approx(24 * 2**30 - 16e9 - 2e6 - 1e6)


def test_memory_budget_below_the_frozen_weights_names_both() -> None:
    profile = _with_fixed_memory(weights=30e9, state=0.0)
    with pytest.raises(PlanningError, match=r"budget.memory: '24GiB' is 24.00 GiB, but the frozen weights .* 27.94 GiB"):
        problem_from_profile(profile, {"params": 100, "memory": "24GiB"})


def test_memory_total_and_adapter_cap_are_not_both_given() -> None:
    with pytest.raises(ValueError, match="not both"):
        problem_from_profile(synthetic_profile(), {"params": 100, "memory": "1GiB", "memory_bytes": 1e6})
