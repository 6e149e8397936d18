"""Plans peft can export whole: one solve per peft family of methods, the best plan kept.

peft applies one config type per model, so an exportable plan keeps to one of
`profiler.methods.export.FAMILIES` (LoRA + norms, (IA)^3 + norms, LayerNorm tuning, prompt tuning
alone). Each family's part of the problem is solved within a share of one time limit; the plan of
the best part is kept (by the objective, ties to the cheaper in p + c), and the report says what the
restriction left out and why: the methods in no family, and those of the families that lost, with
their objective values. A family whose methods in the problem all lie in another's is not solved:
it cannot do better.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from app.planning.problem import PlanningError
from profiler.methods.export import FAMILIES, Family, reason
from solver import Candidate, Plan, Problem, SolveTimeout, solve

_BY_TYPE = {f.peft_type: f for f in FAMILIES}
_ONE_TYPE = "peft applies one config type per model"


class LeftOut(BaseModel):
    """Candidates an exportable plan could not choose, and why."""

    methods: list[str]
    count: int = Field(description="How many candidates of these methods the problem has.")
    params: int = Field(description="Their trainable parameters, all together.")
    reason: str


class FamilySolve(BaseModel):
    """One peft family's part of the problem, solved."""

    family: str = Field(description="Its peft config type: LORA, IA3, LN_TUNING or PROMPT_TUNING.")
    methods: list[str] = Field(description="The problem's methods in it.")
    status: Literal["optimal", "feasible", "infeasible", "timeout"]
    value: float | None = Field(description="Its plan's objective value (gain, or efficiency M); null without one.")


class Exportable(BaseModel):
    """The peft family a plan keeps to, every family solved, and what the restriction left out."""

    target: Literal["peft"] = "peft"
    family: str = Field(description="The peft config type of the plan's family.")
    families: list[FamilySolve]
    left_out: list[LeftOut]

    def summary(self) -> str:
        """One line: the plan's family and, by reason, how many candidates (and parameters) were left out."""
        head = f"exportable to peft as {_BY_TYPE[self.family].label}"
        if not self.left_out:
            return f"{head}; nothing left out"
        parts = [f"{item.count:,} {'/'.join(item.methods)} candidate{'s' * (item.count != 1)} "
                 f"({item.params:,} parameters): {item.reason}" for item in self.left_out]
        return f"{head}; left out {'; '.join(parts)}"


@dataclass(frozen=True)
class ExportablePlan:
    """The plan, the part of the problem it solves (its family's candidates) and the report."""

    plan: Plan
    problem: Problem
    exportable: Exportable


def _families(problem: Problem) -> list[Family]:
    """The peft families to solve for `problem`: those with candidates there, less those another's contain."""
    present = {c.method for c in problem.candidates}
    parts = [f.methods & present for f in FAMILIES]
    return [f for i, (f, mine) in enumerate(zip(FAMILIES, parts, strict=True))
            if mine and not any(mine < other or (mine == other and j < i) for j, other in enumerate(parts))]


def family_part(problem: Problem, family: str) -> Problem:
    """`problem` with only the candidates of `family` (a peft config type)."""
    methods = _BY_TYPE[family].methods
    return problem.model_copy(update={"candidates": [c for c in problem.candidates if c.method in methods]})


def _value(plan: Plan) -> float:
    return plan.gain if plan.objective == "gain" else (plan.efficiency or 0.0)


def _solve_each(parts: dict[str, Problem], deadline: float) -> dict[str, Plan | None]:
    """Each part's plan (None: none found in time); the smaller parts first, each with an equal share of the
    time left, so what they do not use goes to the larger."""
    plans: dict[str, Plan | None] = {}
    order = sorted(parts, key=lambda name: len(parts[name].candidates))
    for i, name in enumerate(order):
        share = max(deadline - time.perf_counter(), 0.0) / (len(order) - i)
        try:
            plans[name] = solve(parts[name], max_time_s=share)
        except SolveTimeout:
            plans[name] = None
    return {name: plans[name] for name in parts}


def _lost(family: str, plan: Plan | None, best_family: str, best: Plan, min_gain: float) -> str:
    label, best_label = _BY_TYPE[family].label, _BY_TYPE[best_family].label
    if plan is None:
        what = "no plan found within its share of the time limit"
    elif plan.status == "infeasible":
        what = "no plan meets the budget" + (f" and min_gain {min_gain:g}" if min_gain > 0 else "")
    else:
        name = "gain" if plan.objective == "gain" else "M"
        value, top = _value(plan), _value(best)
        what = (f"{name} {value:.4g} < {best_label} {top:.4g}" if value < top
                else f"{name} {value:.4g} ties with {best_label}, which costs no more")
    return f"{label}: {what} ({_ONE_TYPE})"


def _left_out(problem: Problem, plans: dict[str, Plan | None], best_family: str) -> list[LeftOut]:
    """The methods in no family (each with its reason), then those of each family that lost."""
    by_method: dict[str, list[Candidate]] = defaultdict(list)
    for c in problem.candidates:
        by_method[c.method].append(c)

    def item(methods: list[str], why: str) -> LeftOut:
        chosen = [c for m in methods for c in by_method[m]]
        return LeftOut(methods=methods, count=len(chosen), params=sum(c.params for c in chosen), reason=why)

    exportable = frozenset().union(*(f.methods for f in FAMILIES))
    out = [item([m], reason(m)) for m in sorted(set(by_method) - exportable)]
    covered = set(_BY_TYPE[best_family].methods)
    for family, plan in plans.items():
        methods = sorted(_BY_TYPE[family].methods & set(by_method) - covered)
        covered |= set(methods)
        if methods:
            out.append(item(methods, _lost(family, plan, best_family, plans[best_family], problem.min_gain)))
    return out


def _status(plans: dict[str, Plan | None], found: bool) -> tuple[str, float | None]:
    """The combined status and bound: optimal only when every part was proven; the bound the best of theirs."""
    if not found:
        return "infeasible", None
    statuses = ["timeout" if p is None else p.status for p in plans.values()]
    status = "optimal" if all(s in ("optimal", "infeasible") for s in statuses) else "feasible"
    bounds = [None if p is None else p.bound for p in plans.values() if p is None or p.status != "infeasible"]
    return status, (None if None in bounds else max(bounds))


def solve_exportable(problem: Problem, max_time_s: float) -> ExportablePlan:
    """The best plan within one peft family, solved within `max_time_s` in all.

    Raises `PlanningError` when no candidate belongs to a family, `SolveTimeout` when no part found a plan in time.
    """
    start = time.perf_counter()
    names = [f.peft_type for f in _families(problem)]
    if not names:
        methods = sorted({c.method for c in problem.candidates})
        raise PlanningError("exportable: peft can export none of the candidates: "
                            + "; ".join(f"{m} ({reason(m)})" for m in methods))
    parts = {name: family_part(problem, name) for name in names}
    plans = _solve_each(parts, start + max_time_s)
    found = [name for name, p in plans.items() if p is not None and p.status != "infeasible"]
    if not found and None in plans.values():
        raise SolveTimeout("no exportable plan was found within the time limit")
    best = max(found, key=lambda n: (_value(plans[n]), -(plans[n].p + plans[n].c))) if found else names[0]
    status, bound = _status(plans, bool(found))
    plan = plans[best].model_copy(update={"status": status, "bound": bound,
                                          "solve_ms": (time.perf_counter() - start) * 1e3})
    outcomes = [FamilySolve(family=name, methods=sorted({c.method for c in parts[name].candidates}),
                            status="timeout" if p is None else p.status,
                            value=None if p is None or p.status == "infeasible" else _value(p))
                for name, p in plans.items()]
    report = Exportable(family=best, families=outcomes, left_out=_left_out(problem, plans, best))
    return ExportablePlan(plan, parts[best], report)
