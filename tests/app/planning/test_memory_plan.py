"""A plan's total training memory: the saved input q, k and v share is paid once by the solver under a memory
budget, and the plan's breakdown is the profile's account of its selection."""

from __future__ import annotations

import json
import math

import pytest

from app.cli import main as cli
from app.planning import problem_from_profile, with_memory
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.accounting import plan_memory
from solver import solve
from tests.tiny import TINY_LLAMA

PARTS = ["weights", "trainable_state", "activations", "logits", "overhead"]


@pytest.fixture(scope="module")
def profile():
    """LoRA rank 4 on q, k and v of the tiny Llama (no timing: only sizes matter here)."""
    options = ProfileOptions(methods=["lora"], ranks=[4], target_modules=["q_proj", "k_proj", "v_proj"],
                             batch_size=2, seq_len=16, timing="none")
    return profile_model(ModelSpec(config=TINY_LLAMA), options)


def _top_layer_qkv(profile) -> list[str]:
    top = max(c.layer for c in profile.candidates if c.layer is not None)
    return sorted(c.id for c in profile.candidates if c.layer == top)


def _plan(profile, memory: float):
    wanted = _top_layer_qkv(profile)
    gains = {"candidates": {cid: 1.0 for cid in wanted}, "methods": {"lora": 0.0}}
    problem = problem_from_profile(profile, {"params": "100%", "memory": memory}, gains=gains)
    return with_memory(solve(problem), profile), wanted


def test_a_budget_that_fits_q_k_v_only_with_their_input_paid_once_takes_all_three(profile):
    wanted = _top_layer_qkv(profile)
    assert len(wanted) == 3 and len({c.saved_input for c in profile.candidates if c.id in wanted}) == 1
    exact = math.fsum(plan_memory(profile, wanted).model_dump().values())
    shared = {i.key: i.bytes for i in profile.saved_inputs}[
        next(c.saved_input for c in profile.candidates if c.id == wanted[0])]
    assert shared > 0
    plan, _ = _plan(profile, exact)
    assert plan.status == "optimal" and sorted(plan.selected) == wanted
    assert plan.memory_total_bytes == pytest.approx(exact, rel=1e-12)


def test_one_byte_less_leaves_one_of_the_three_out(profile):
    """Against under-counting: a solver that forgot the input would still take all three."""
    wanted = _top_layer_qkv(profile)
    exact = math.fsum(plan_memory(profile, wanted).model_dump().values())
    plan, _ = _plan(profile, exact - 1)
    assert plan.status == "optimal" and len(plan.selected) == 2 and set(plan.selected) < set(wanted)
    assert plan.memory_total_bytes <= exact - 1


def test_the_breakdown_has_exactly_the_parts_and_adds_up_to_the_total(profile):
    plan, wanted = _plan(profile, 1e12)
    assert sorted(plan.selected) == wanted
    assert list(plan.memory_breakdown) == PARTS
    assert plan.memory_total_bytes == pytest.approx(math.fsum(plan.memory_breakdown.values()), rel=1e-12)
    fixed = math.fsum(profile.memory.fixed.model_dump().values())
    # The solver's own memory total (adapters, reached layers, the input once) is the rest of the breakdown.
    assert plan.memory_bytes == pytest.approx(plan.memory_total_bytes - fixed, rel=1e-9)


def test_the_cli_table_prints_the_total_in_gib_and_its_parts(profile, tmp_path, capsys):
    path, gains = tmp_path / "profile.json", tmp_path / "gains.json"
    path.write_text(profile.model_dump_json())
    gains.write_text(json.dumps({"methods": {"lora": {"default": 1.0, "layers": {"0": 2.0}}}}))
    args = ["plan", "--profile", str(path), "--gains", str(gains), "--budget-params", "100%", "--budget-memory", "1GiB"]
    assert cli([*args, "--no-progress"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["selected"]) == 6
    expected = plan_memory(profile, plan["selected"]).model_dump()
    assert plan["memory_breakdown"] == pytest.approx(expected, rel=1e-12)
    assert cli([*args, "--table"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "memory " in x and "GiB" in x)
    total = math.fsum(expected.values())
    parts = " + ".join(f"{name} {expected[name] / 2**30:.3g}" for name in PARTS)
    assert f"memory {total / 2**30:.3g} GiB = {parts} GiB" in line
