"""Bad problems are rejected with a message naming the field."""

from __future__ import annotations

import copy
import math

import pytest
from pydantic import ValidationError

from solver import Problem, solve

BASE = {
    "candidates": [
        {"id": "a", "method": "lora", "layer": 0, "gain": 1.0, "params": 10, "flops": 5.0},
        {"id": "b", "method": "bitfit", "layer": 1, "gain": 0.5, "params": 2, "flops": 1.0},
    ],
    "layers": [{"index": 0, "backward_flops": 3.0}, {"index": 1, "backward_flops": 3.0}],
    "budget": {"params": 100, "flops": 50.0},
    "objective": "gain",
}


def _with(path: list, value) -> dict:
    data = copy.deepcopy(BASE)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["candidates", 1, "id"], "a", "candidates"),
        (["candidates", 0, "gain"], math.nan, "candidates.0.gain"),
        (["candidates", 0, "flops"], math.inf, "candidates.0.flops"),
        (["candidates", 0, "gain"], -1.0, "candidates.0.gain"),
        (["candidates", 0, "params"], 0, "candidates.0.params"),
        (["candidates", 0, "params"], 2.5, "candidates.0.params"),
        (["candidates", 1, "flops"], 0.0, "candidates.1.flops"),
        (["candidates", 0, "latency_ms"], -1.0, "candidates.0.latency_ms"),
        (["budget", "params"], 0, "budget.params"),
        (["budget", "flops"], -5.0, "budget.flops"),
        (["budget", "latency_ms"], 0.0, "budget.latency_ms"),
        (["candidates", 0, "layer"], 7, "candidates.0.layer"),
        (["objective"], "speed", "objective"),
        (["min_gain"], -0.1, "min_gain"),
        (["layers", 1, "index"], 0, "layers"),
        (["candidates"], [], "candidates"),
        (["budget", "tokens"], 5, "budget.tokens"),
        (["budget", "params"], 1e300, "budget.params"),
        (["candidates", 0, "gain"], 1e31, "candidates.0.gain"),
        (["candidates", 0, "flops"], 1e-300, "candidates.0.flops"),
        (["candidates", 0, "saved_input"], "x", "saved_input"),
        (["saved_inputs"], [{"key": "x", "memory_bytes": 1.0}] * 2, "saved_inputs"),
        (["saved_inputs"], [{"key": "x", "memory_bytes": -1.0}], "saved_inputs.0.memory_bytes"),
    ],
)
def test_bad_input_names_the_field(path: list, value, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Problem.model_validate(_with(path, value))
    locations = [".".join(str(p) for p in e["loc"]) for e in info.value.errors()]
    messages = " ".join(e["msg"] for e in info.value.errors())
    assert any(loc.startswith(field) for loc in locations) or field.split(".")[-1] in messages, (
        locations,
        messages,
    )


def test_duplicate_id_message_names_the_id() -> None:
    with pytest.raises(ValidationError, match="duplicate candidate id 'a'"):
        Problem.model_validate(_with(["candidates", 1, "id"], "a"))


def test_missing_budget_flops_is_required() -> None:
    data = copy.deepcopy(BASE)
    del data["budget"]["flops"]
    with pytest.raises(ValidationError) as info:
        Problem.model_validate(data)
    assert info.value.errors()[0]["loc"] == ("budget", "flops")


def test_valid_problem_passes() -> None:
    assert Problem.model_validate(BASE).objective == "gain"


def test_extreme_but_valid_magnitudes_give_a_finite_efficiency() -> None:
    from solver import solve

    data = {
        "candidates": [
            {"id": "a", "method": "lora", "gain": 1e30, "params": 1, "flops": 1e-9},
            {"id": "b", "method": "lora", "gain": 0.0, "params": 10**29, "flops": 1e30},
        ],
        "budget": {"params": 1e30, "flops": 1e30},
        "objective": "efficiency",
    }
    plan = solve(Problem.model_validate(data))
    assert plan.selected == ["a"]
    assert math.isfinite(plan.efficiency) and plan.efficiency > 1e60


def test_too_many_groups_on_one_saved_input_are_refused_naming_the_field() -> None:
    data = copy.deepcopy(BASE)
    data["saved_inputs"] = [{"key": "x", "memory_bytes": 1.0}]
    data["budget"]["memory_bytes"] = 100.0
    data["candidates"] = [
        {"id": f"{g}-{r}", "method": "lora", "group": g, "gain": 1.0, "params": r, "flops": 1.0, "saved_input": "x"}
        for g in "abcdef" for r in range(1, 7)
    ]  # 7**6 - 1 = 117,648 combinations
    with pytest.raises(ValueError, match=r"saved_inputs: 6 groups share saved input 'x' .* 117,648 combinations"):
        solve(Problem.model_validate(data))
