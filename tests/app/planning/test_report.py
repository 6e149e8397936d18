"""plan_report: one box per selected candidate where its layer and module kind say, the budgets against the
problem's limits, a size and offline bound at 3,000 candidates, and sections that say why they are empty."""

from __future__ import annotations

import pytest

from app.planning.report import plan_report, report_frontier
from solver import Plan, Problem, solve
from solver.examples import llama_like_problem
from tests.app.report_dom import ReportDom, read_report

LLAMA_KINDS = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate", "up_proj": "up",
               "down_proj": "down", "input_layernorm": "norm", "post_attention_layernorm": "norm", "attn": "attn",
               "mlp": "mlp", "embed_tokens": "prompt"}
"""The module kind of each site name in solver.examples' LLaMA-like problems."""


@pytest.fixture(scope="module")
def llama() -> tuple[Problem, Plan, str]:
    """The 3,000-candidate LLaMA-like problem, its plan and its report (frontier capped at 1 s)."""
    problem = llama_like_problem(3000)
    plan = solve(problem)
    return problem, plan, plan_report(plan, problem, report_frontier(problem, max_time_s=1.0), plan_id="p1")


def test_a_3000_candidate_report_is_small_and_references_nothing_outside(llama) -> None:
    problem, plan, html = llama
    assert len(problem.candidates) >= 3000 and len(plan.selected) > 100
    assert len(html.encode()) < 300 * 1024
    dom = read_report(html)
    assert dom.references == []
    assert "script" not in dom.tags and "link" not in dom.tags and "img" not in dom.tags
    assert "url(" not in html.split("</style>")[0]


def test_one_box_per_selected_candidate_at_its_layer_and_kind(llama) -> None:
    problem, plan, html = llama
    dom = read_report(html)
    by_id = {c.id: c for c in problem.candidates}
    assert sorted(cell["data-id"] for cell in dom.cells) == sorted(plan.selected)
    for cell in dom.cells:
        c = by_id[cell["data-id"]]
        assert cell["data-row"] == f"layer {c.layer}"
        assert cell["data-column"] == LLAMA_KINDS[c.site.rsplit(".", 1)[-1]]
        setting = c.id.split(":")[2] if c.id.count(":") == 2 else None  # "r8", "b16", "m20"
        assert setting is None or setting in cell["text"].split(), (c.id, cell["text"])


def _assert_bars(dom: ReportDom, plan: Plan, problem: Problem | None) -> None:
    for axis in ("params", "flops", "memory_bytes", "latency_ms"):
        bar = dom.bars[axis]
        assert float(bar["data-used"]) == getattr(plan, axis)
        limit = None if problem is None else getattr(problem.budget, axis)
        assert ("data-limit" not in bar) if limit is None else float(bar["data-limit"]) == limit
        if limit is None:
            assert ("no cap" if problem is not None else "limit unknown") in bar["text"]
    assert f"{plan.params:,}" in dom.bars["params"]["text"]
    if problem is not None:
        assert f"{100 * plan.params / problem.budget.params:.2f} %" in dom.bars["params"]["text"]


def test_budget_bars_show_the_plan_against_its_limits(llama) -> None:
    problem, plan, html = llama
    _assert_bars(read_report(html), plan, problem)


INLINE = Problem.model_validate({
    "candidates": [
        {"id": "a", "method": "lora", "gain": 3.0, "params": 10, "flops": 5.0},
        {"id": "b", "method": "lora", "gain": 2.0, "params": 6, "flops": 2.0, "config": {"rank": 4}},
        {"id": "c", "method": "bitfit", "gain": 1.0, "params": 5, "flops": 1.0},
    ],
    "budget": {"params": 12, "flops": 10},
})


def test_a_feasible_plan_shows_its_bound_and_gap() -> None:
    plan = Plan(status="feasible", objective="gain", selected=["b"], gain=2.0, params=6, flops=2.0, latency_ms=0.0,
                memory_bytes=0.0, p=0.5, c=0.2, efficiency=6.3, bound=2.5, solve_ms=10.0)
    dom = read_report(plan_report(plan, INLINE, report_frontier(INLINE)))
    assert "bound2.5" in dom.sections["solver"] and "gap20 %" in dom.sections["solver"]
    assert [(c["data-id"], c["text"].split()) for c in dom.cells] == [("b", ["LoRA", "r4"])]


def test_an_inline_plan_says_why_it_cannot_be_exported() -> None:
    plan = solve(INLINE)
    dom = read_report(plan_report(plan, INLINE, report_frontier(INLINE), source={"gains": {"problem": 3}}))
    assert sorted(c["data-id"] for c in dom.cells) == sorted(plan.selected) == ["b", "c"]
    assert {c["data-id"]: c["data-column"] for c in dom.cells} == {"b": "b", "c": "bias"}
    assert "Not exportable: cannot read candidate id" in dom.sections["export"]
    assert "written in the inline problem" in dom.sections["gains"]
    assert "cost to make is not recorded" in dom.sections["gains"]


def test_bare_ids_are_placed_from_the_ids_and_the_rest_says_why() -> None:
    ids = ["encoder.layer.0.attention.self.query:lora:r4", "encoder.layer.1.output.dense:lora:r8",
           "encoder.layer.1.attention.output.LayerNorm:norm_affine"]
    plan = Plan(status="optimal", objective="gain", selected=ids, gain=1.0, params=100, flops=1e6, latency_ms=0.5,
                memory_bytes=1e3, p=0.1, c=0.1, efficiency=10.0, bound=1.0, solve_ms=1.0)
    dom = read_report(plan_report(plan, None, report_frontier(None)))
    assert [(c["data-row"], c["data-column"]) for c in dom.cells] == [("layer 0", "q"), ("layer 1", "down"),
                                                                      ("layer 1", "norm")]
    _assert_bars(dom, plan, None)
    assert "--problem FILE" in dom.sections["budgets"] and "--problem FILE" in dom.sections["frontier"]
    assert "without gains" in dom.sections["heatmap"]
    assert "Fully exportable: all 3 selected candidates go into LORA" in dom.sections["export"]


def test_an_infeasible_plan_selects_nothing_and_says_so() -> None:
    plan = Plan(status="infeasible", objective="gain", selected=[], gain=0.0, params=0, flops=0.0, latency_ms=0.0,
                memory_bytes=0.0, p=0.0, c=0.0, efficiency=None, bound=None, solve_ms=1.0)
    dom = read_report(plan_report(plan, INLINE, report_frontier(INLINE)))
    assert dom.cells == []
    assert "selects nothing" in dom.sections["heatmap"] and "selects nothing" in dom.sections["export"]
    assert "no feasible plan" in dom.sections["solver"]
