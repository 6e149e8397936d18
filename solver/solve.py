"""`solve(problem) -> Plan`: the exact planner for both objectives."""

from __future__ import annotations

import time

from solver.efficiency import RTOL, maximize_efficiency
from solver.instance import Instance
from solver.knapsack import Form, KnapsackModel, gain_form
from solver.problem import Plan, Problem, SolveTimeout
from solver.shared import fold


def solve(problem: Problem, *, max_time_s: float = 60.0, efficiency_rtol: float = RTOL) -> Plan:
    """Return the optimal plan for `problem` (status `feasible` if `max_time_s` cut it short).

    Objective `gain` maximizes total gain (ties: the smaller p + c); objective
    `efficiency` maximizes M = gain / sqrt(p*c) over non-empty plans (ties: the
    larger gain), proven optimal within `efficiency_rtol` relative. Both honour every budget cap, the groups, shared layer
    costs, saved inputs (paid once) and `min_gain`. Deterministic: CP-SAT runs single-threaded with a
    fixed seed, so equal problems give equal plans. Raises ValueError when saved inputs join too many groups.
    """
    start = time.perf_counter()
    deadline = start + max_time_s
    folded = fold(problem)
    inst = folded.instance
    allowed = inst.fitting_alone()
    if problem.objective == "gain":
        selection, status, bound = _maximize_gain(inst, allowed, deadline)
    else:
        result = maximize_efficiency(inst, allowed, deadline, efficiency_rtol)
        selection, status, bound = result.selection, result.status, result.bound
    return plan_of(folded.source_instance, folded.unfold(selection), status, bound,
                   (time.perf_counter() - start) * 1e3)


def cost_form(inst: Instance) -> Form:
    """Return p + c as a form: the plan's shares of the params and flops budgets."""
    b = inst.problem.budget
    return Form(
        [p / b.params + f / b.flops for p, f in zip(inst.params, inst.flops, strict=True)],
        [f / b.flops for f in inst.layer_flops],
    )


def _maximize_gain(
    inst: Instance, allowed: list[int], deadline: float
) -> tuple[list[int], str, float | None]:
    """Return (selection, status, gain bound) of the max-gain plan; ties to the cheaper plan."""
    min_gain = inst.problem.min_gain
    model = KnapsackModel(inst, allowed)
    if min_gain > 0:
        model.add_at_least(gain_form(inst), min_gain, loose=True)
    out = model.maximize(
        gain_form(inst),
        time_limit_s=deadline - time.perf_counter(),
        then_minimize=cost_form(inst),
    )
    if out.status == "infeasible":
        return [], "infeasible", None
    if out.status == "unknown":
        if min_gain > 0:
            raise SolveTimeout("no plan reaching min_gain was found within the time limit")
        return [], "feasible", out.bound
    if not inst.fits(inst.totals(out.selection)):
        return [], "infeasible", None
    return out.selection, out.status, out.bound


def plan_of(
    inst: Instance, selection: list[int], status: str, bound: float | None, solve_ms: float
) -> Plan:
    """Return the Plan of `selection`, with totals recomputed exactly in floats."""
    selection = sorted(selection)
    totals = inst.totals(selection)
    p, c = inst.fractions(totals)
    return Plan(
        status=status,
        objective=inst.problem.objective,
        selected=[inst.ids[i] for i in selection],
        gain=totals.gain,
        params=totals.params,
        flops=totals.flops,
        latency_ms=totals.latency_ms,
        memory_bytes=totals.memory_bytes,
        p=p,
        c=c,
        efficiency=inst.efficiency(totals),
        bound=bound,
        solve_ms=solve_ms,
    )
