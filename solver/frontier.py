"""The Pareto frontier of total gain against one budget axis."""

from __future__ import annotations

import math
import time
from typing import Literal

from pydantic import BaseModel

from solver.instance import Instance
from solver.knapsack import Form, KnapsackModel, gain_form
from solver.problem import Plan, Problem
from solver.solve import plan_of

Axis = Literal["params", "flops", "latency_ms", "memory_bytes"]
# A float cap is lowered by this relative step below the last point's cost.
_FLOAT_STEP = 2.0**-30


class Frontier(BaseModel):
    """Plans of maximal gain for decreasing caps on `axis`, in ascending cost.

    `complete` is true when every Pareto-optimal point was found; false when
    `max_points` (or the time limit) stopped the descent: then the points are
    the most expensive ones, nearest the budget.
    """

    axis: Axis
    points: list[Plan]
    complete: bool


def _axis_form(inst: Instance, axis: Axis) -> Form:
    layers = len(inst.layer_index)
    return {
        "params": lambda: Form([float(v) for v in inst.params], [0.0] * layers),
        "flops": lambda: Form(list(inst.flops), list(inst.layer_flops)),
        "latency_ms": lambda: Form(list(inst.latency), [0.0] * layers),
        "memory_bytes": lambda: Form(list(inst.memory), list(inst.layer_memory)),
    }[axis]()


def _below(cost: float, axis: Axis) -> float:
    """Return the largest cap that excludes a plan costing `cost` on `axis`."""
    return cost - 1 if axis == "params" else cost * (1 - _FLOAT_STEP)


def frontier(
    problem: Problem, axis: Axis = "params", max_points: int = 100, max_time_s: float = 120.0
) -> Frontier:
    """Return the gain-vs-`axis` Pareto frontier within the problem's other caps.

    Each point is the max-gain plan under a cap on `axis` (ties to the cheaper
    plan on that axis), found exactly; caps start at the budget and descend
    to just below each point's cost, so no Pareto point is skipped.
    min_gain and the objective are ignored: the frontier spans all gains.
    """
    start = time.perf_counter()
    inst = Instance.from_problem(problem)
    allowed = inst.fitting_alone()
    form = _axis_form(inst, axis)
    base = KnapsackModel(inst, allowed)
    budget_cap = getattr(problem.budget, axis)
    cap = budget_cap if budget_cap is not None else math.fsum(v for v in form.x) + math.fsum(form.y)
    lowest = min((form.value([i], []) for i in allowed), default=math.inf)
    points: list[Plan] = []
    complete = True
    while allowed and cap >= lowest and len(points) < max_points:
        model = base.clone()
        model.add_at_most(form, cap)
        out = model.maximize(
            gain_form(inst),
            time_limit_s=max(start + max_time_s - time.perf_counter(), 0.01),
            then_minimize=form,
        )
        if out.status != "optimal" or not out.selection:
            complete = complete and out.status in ("optimal", "infeasible")
            break
        plan = plan_of(inst, out.selection, "optimal", out.bound, (time.perf_counter() - start) * 1e3)
        if not points or plan.gain < points[-1].gain:
            points.append(plan)
        cap = _below(getattr(plan, axis), axis)
    complete = complete and (len(points) < max_points or cap < lowest)
    return Frontier(axis=axis, points=points[::-1], complete=complete)
