"""A plan as one self-contained HTML page (inline CSS and SVG, no scripts, no external assets): where the
budget went (a heatmap of layers x module kinds), each budget against its limit, what more budget buys (the
frontier), where the gains come from, the solver's proof, and how to export the plan.

Plain functions over the plan, its problem and (optionally) its source and profile; a section that the
data at hand cannot fill says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from app.planning.chart import Bar, bars_svg, fmt, frontier_svg, heatmap_svg
from app.planning.heatmap import Placed, place, place_id, plan_heatmap
from profiler.errors import ProfileError
from profiler.methods.export import export_plan
from profiler.schema import Profile
from solver import Frontier, Plan, Problem, frontier

FRONTIER_POINTS = 30
"""Most frontier points a report computes."""
FRONTIER_SECONDS = 3.0
"""Time cap of a report's frontier (the descent stops there, keeping the points found)."""
NO_PROBLEM = ("the plan's problem is not at hand (a bare plan JSON): run `peft-planner report PLAN --problem FILE` "
              "with the problem it solved (`GET /v1/plans/{id}/problem`), or `--profile FILE`")
"""Why a section needs the problem, when it is missing."""

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1180px;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.facts{display:flex;flex-wrap:wrap;gap:8px 24px;margin:8px 0}.facts b{font-weight:600}
.why{background:#fcf8e3;border-left:4px solid #e0c060;padding:6px 10px;margin:8px 0}
.scroll{overflow-x:auto}pre{background:#f4f4f4;padding:8px 10px;overflow-x:auto}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:13px}
"""


def report_frontier(
    problem: Problem | None, max_points: int = FRONTIER_POINTS, max_time_s: float = FRONTIER_SECONDS
) -> Frontier | str:
    """The gain-vs-params frontier of `problem` (within its budget), or why there is none."""
    if problem is None:
        return NO_PROBLEM
    if not any(c.gain > 0 for c in problem.candidates):
        return "every candidate's gain is 0: there is no frontier to draw"
    return frontier(problem, "params", max_points, max_time_s)


def plan_report(
    plan: Plan,
    problem: Problem | None,
    front: Frontier | str,
    *,
    plan_id: str | None = None,
    source: Mapping[str, Any] | None = None,
    profile: Profile | None = None,
    problem_note: str = NO_PROBLEM,
) -> str:
    """The HTML page of `plan`: `problem` is the problem it solved (None: only its ids are known, and
    `problem_note` says why), `front` the frontier or why there is none (`report_frontier`), `source` the
    plan's stored source (budget as asked, gain sources), `profile` the profile it was solved from."""
    data = problem.candidates if problem is not None else profile.candidates if profile is not None else []
    placed = [place(c) for c in data]
    title = f"Plan {plan_id}" if plan_id else "Plan"
    sections = [
        _summary(title, plan, problem, source, profile),
        _heatmap_section(plan, placed, problem_note if not placed else None),
        _budget_section(plan, problem, problem_note),
        _frontier_section(plan, problem, front),
        _gains_section(source, problem),
        _solver_section(plan, source),
        _export_section(plan, plan_id),
        _selected_table(plan, placed),
    ]
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        *sections, "</body></html>",
    ])


def _section(key: str, heading: str, *body: str) -> str:
    return f'<section id="{key}"><h2>{escape(heading)}</h2>\n' + "\n".join(body) + "\n</section>"


def _why(text: str) -> str:
    return f'<p class="why">{escape(text)}</p>'


def _p(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def _objective_value(plan: Plan) -> float | None:
    return plan.gain if plan.objective == "gain" else plan.efficiency


def _summary(
    title: str, plan: Plan, problem: Problem | None, source: Mapping[str, Any] | None, profile: Profile | None,
) -> str:
    if profile is not None:
        m = profile.model
        model = (f"{m.name}: {m.total_params:,} parameters, {m.num_layers} layers; profiled on {profile.device} "
                 f"({profile.dtype}), batch {profile.batch_size} x {profile.seq_len}")
    elif source is not None and source.get("profile_id"):
        model = f"profile {source['profile_id']}"
    elif source is not None:
        model = "an inline problem (no profiled model)"
    else:
        model = "a problem not recorded here (a bare plan JSON)"
    candidates = "" if problem is None else f" of {len(problem.candidates):,} candidates"
    efficiency = "-" if plan.efficiency is None else f"{plan.efficiency:.4g}"
    facts = [("status", plan.status), ("objective", plan.objective),
             ("selected", f"{len(plan.selected):,}{candidates}"), ("gain", f"{plan.gain:.4g}"),
             ("M", efficiency), ("solved in", f"{plan.solve_ms:.0f} ms")]
    items = "".join(f"<span>{escape(k)} <b>{escape(v)}</b></span>" for k, v in facts)
    return (f"<section id=\"summary\"><h1>{escape(title)}</h1>"
            f"<p>Solved for {escape(model)}.</p><div class=\"facts\">{items}</div></section>")


def _heatmap_section(plan: Plan, placed: Sequence[Placed], note: str | None) -> str:
    body = [_p(f"One box per selected candidate ({len(plan.selected):,}): its method and setting (LoRA rank r, "
               "adapter bottleneck b, prompt length m; BitFit names the module whose bias it trains), shaded by "
               "the gain it carries. Grey cells had candidates, none chosen. Hover a box for its id.")]
    if note is not None:
        body.append(_why(f"Placed from the candidate ids alone, without gains (boxes unshaded): {note}."))
    if not plan.selected:
        body.append(_why(f"The plan selects nothing (status {plan.status})."))
    grid = plan_heatmap(plan.selected, placed)
    body.append(f'<div class="scroll">{heatmap_svg(grid, "Selected candidates by layer and module kind")}</div>')
    return _section("heatmap", "Where the budget went", *body)


_AXES: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("params", "params", lambda v: f"{v:,.0f}"),
    ("flops", "FLOPs", lambda v: f"{fmt(v)} FLOPs"),
    ("memory_bytes", "memory", lambda v: f"{fmt(v)}B"),
    ("latency_ms", "latency", lambda v: f"{v:.4g} ms"),
)


def budget_bars(plan: Plan, problem: Problem | None) -> list[Bar]:
    """One bar per budget axis: the plan's total against the problem's cap (None: no cap, or no problem)."""
    bars = []
    for key, label, show in _AXES:
        used = getattr(plan, key)
        limit = None if problem is None else getattr(problem.budget, key)
        if limit is not None:
            text = f"{show(used)} of {show(limit)} ({100 * used / limit:.2f} %)"
        else:
            text = f"{show(used)} · {'no cap' if problem is not None else 'limit unknown'}"
        bars.append(Bar(key=key, label=label, used=used, limit=limit, text=text))
    return bars


def _budget_section(plan: Plan, problem: Problem | None, note: str) -> str:
    body = [_p("Each total of the plan against its limit in the budget (FLOPs and memory include the shared cost "
               "of the layers backward must reach).")]
    if problem is None:
        body.append(_why(f"The limits are unknown: {note}."))
    body.append(f'<div class="scroll">{bars_svg(budget_bars(plan, problem), "Budget used")}</div>')
    return _section("budgets", "Budgets", *body)


def _frontier_section(plan: Plan, problem: Problem | None, front: Frontier | str) -> str:
    heading = "What more budget buys"
    if isinstance(front, str):
        return _section("frontier", heading, _why(f"No frontier: {front}."))
    if not front.points:
        return _section("frontier", heading, _why(
            f"No frontier: the time cap ({FRONTIER_SECONDS:g} s here) passed before the first exact point (a large "
            "problem takes seconds per point); `GET /v1/profiles/{id}/frontier` or `peft-planner report "
            "--frontier-time S` compute it with more time."))
    assert problem is not None  # a frontier is only made from a problem
    budget = problem.budget.params
    marker = (float(plan.params), plan.gain, "this plan") if plan.selected else None
    chart = frontier_svg(front, "Best gain for each params cap", marker, cap=budget)
    stopped = ("" if front.complete else " The descent stopped at its cap on points or time: these are exact "
               "Pareto points, but not all of them (`GET /v1/profiles/{id}/frontier` or `peft-planner report "
               "--frontier-time S` give it more time).")
    body = [_p(f"Each point is the best gain reachable under a cap on params, found exactly, from the params "
               f"budget ({budget:,.0f}) down; the other caps stay as they are. {len(front.points)} point(s)."
               f"{stopped}"), _p(_marginal(front))]
    if marker is None:
        body.append(_why("The plan selects nothing, so it is not marked."))
    body.append(f'<div class="scroll">{chart}</div>')
    return _section("frontier", heading, *body)


def _marginal(front: Frontier) -> str:
    """What the last params bought, read off the two most expensive points (the slope at the budget)."""
    if len(front.points) < 2:
        return "One point: nothing to compare it with."
    below, top = front.points[-2], front.points[-1]
    extra = top.params - below.params
    scale, unit = next((s, u) for s, u in ((1e9, "billion params"), (1e6, "million params"),
                                           (1e3, "thousand params"), (1, "param")) if extra >= s or s == 1)
    return (f"Near the budget gain grows by {top.gain - below.gain:.4g} for {extra:,} more params "
            f"({below.params:,} -> {top.params:,}): about {scale * (top.gain - below.gain) / extra:.3g} per {unit}. "
            "That slope is a guide to what a little more params budget would buy; the exact answer is "
            "a solve with the larger budget.")


_SOURCE_NOTES = {
    "prior": "the documented prior (profiler/gains/prior.py, docs/gains.md): a default per method from one model "
             "and task, the same on every layer. Treat a plan resting on it as rough; estimate gains from data "
             "(gradient or probe) to replace it.",
    "gradient": "a gradient proxy on the user's data, calibrated to accuracy points by probe fine-tunes.",
    "probe": "a short fine-tune of each candidate alone against the head-only baseline.",
    "profile": "the profile's own gains (source not recorded).",
    "candidate": "given with the plan request, by candidate id.",
    "method": "given with the plan request, by method.",
    "method-layer": "given with the plan request, by method and layer.",
    "problem": "written in the inline problem by its author.",
}


def _cost_line(cost: Mapping[str, Any] | None) -> str:
    """What the profile's gains cost against one planned fine-tuning run, or why it is not known."""
    if not cost:
        return _why("What these estimates cost to make is not recorded: an inline problem, or a profile whose "
                    "gains were not filled by `peft-planner gains` or a gains job.")
    return _p(f"Estimating them ({cost['source']}) took {cost['wall_s']:.1f} s and {cost['probes']} fine-tuning "
              f"runs: cost_share {cost['cost_share']:.3f}, the example passes of that many {cost['run_steps']}-step "
              f"x {cost['run_batch_size']} fine-tuning runs (docs/gains.md#cost).")


def _gains_section(source: Mapping[str, Any] | None, problem: Problem | None) -> str:
    heading = "Where the gains come from"
    cost = _cost_line((source or {}).get("gain_cost"))
    counts = (source or {}).get("gains")
    if not counts:
        if problem is None:
            return _section("gains", heading, _why("Not recorded: a bare plan JSON has no source."), cost)
        counts = {"problem": len(problem.candidates)}
    rows = "".join(f'<tr><td>{escape(name)}</td><td class="num">{n:,}</td>'
                   f"<td>{escape(_SOURCE_NOTES.get(name, ''))}</td></tr>" for name, n in sorted(counts.items()))
    table = f"<table><tr><th>source</th><th>candidates</th><th>what it is</th></tr>{rows}</table>"
    body = [_p("How many candidates took their gain from each source."), table]
    if "prior" in counts:
        body.append(_why("This plan rests, at least in part, on the documented prior, not on measurements of "
                         "your model and data."))
    return _section("gains", heading, *body, cost)


def _solver_section(plan: Plan, source: Mapping[str, Any] | None) -> str:
    value = _objective_value(plan)
    rows = [("status", plan.status), ("objective", f"{plan.objective} = {'-' if value is None else f'{value:.6g}'}")]
    if plan.status == "optimal":
        rows.append(("proof", "optimal: no plan within the budget does better"))
    elif plan.bound is not None and value is not None:
        gap = (plan.bound - value) / abs(plan.bound) if plan.bound else 0.0
        rows += [("bound", f"{plan.bound:.6g}"), ("gap", f"{100 * gap:.3g} % (the time limit stopped the proof)")]
    else:
        rows.append(("proof", "none: no feasible plan was found" if plan.status == "infeasible" else "no bound"))
    rows.append(("solve time", f"{plan.solve_ms:.0f} ms"))
    if source is not None:
        rows.append(("reused", "yes: an equal problem was solved before" if source.get("reused") else "no"))
        if source.get("problem_sha256"):
            rows.append(("problem sha256", str(source["problem_sha256"])))
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return _section("solver", "Solver and proof", f"<table>{table}</table>")


def _export_section(plan: Plan, plan_id: str | None) -> str:
    api = f"GET /v1/plans/{plan_id or '{id}'}/peft-config"
    body = [_p("Write the plan as Hugging Face peft configs:"),
            f"<pre>peft-planner export plan.json -o adapter/\n{escape(api)}</pre>"]
    if not plan.selected:
        return _section("export", "Export", *body, _why("The plan selects nothing: there is nothing to export."))
    try:
        export = export_plan(list(plan.selected))
    except ProfileError as exc:
        return _section("export", "Export", *body, _why(f"Not exportable: {exc} (ids of an inline problem name no "
                                                        "profiled model's modules)."))
    kinds = ", ".join(c["peft_type"] for c in export.configs) or "none"
    if export.complete:
        body.append(_p(f"Fully exportable: all {len(export.exported):,} selected candidates go into {kinds}."))
        return _section("export", "Export", *body)
    by_reason: dict[str, list[str]] = {}
    for item in export.unsupported:
        by_reason.setdefault(item.reason, []).append(item.id)
    items = "".join(f"<li>{len(ids):,}: {escape(reason)} <details><summary>ids</summary><code>"
                    f"{'<br>'.join(escape(i) for i in ids)}</code></details></li>" for reason, ids in by_reason.items())
    body += [_why(f"Not fully exportable: {len(export.exported):,} of {len(plan.selected):,} selected candidates go "
                  f"into peft configs ({kinds}); {len(export.unsupported):,} are left out:"), f"<ul>{items}</ul>"]
    return _section("export", "Export", *body)


def _selected_table(plan: Plan, placed: Sequence[Placed]) -> str:
    by_id = {p.id: p for p in placed}
    chosen = sorted((by_id.get(cid) or place_id(cid) for cid in plan.selected),
                    key=lambda p: (p.layer is None, p.layer or 0, p.kind, p.id))

    def num(value: float | None, spec: str) -> str:
        return "-" if value is None or not math.isfinite(value) else format(value, spec)

    rows = "".join(
        f"<tr><td><code>{escape(p.id)}</code></td><td>{escape(p.method)}</td><td>{escape(p.setting)}</td>"
        f'<td class="num">{"-" if p.layer is None else p.layer}</td><td>{escape(p.kind)}</td>'
        f'<td class="num">{num(p.gain, ".4g")}</td><td class="num">{num(p.params, ",")}</td></tr>'
        for p in chosen
    )
    return _section("selected", "Selected candidates", f"<details><summary>{len(chosen):,} candidates</summary>"
                    "<table><tr><th>id</th><th>method</th><th>setting</th><th>layer</th><th>kind</th><th>gain</th>"
                    f"<th>params</th></tr>{rows}</table></details>")
