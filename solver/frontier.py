"""The Pareto frontier of total gain against one budget axis."""

from __future__ import annotations

import math
import time

from pydantic import BaseModel

from solver.knapsack import Axis, KnapsackModel, axis_form, gain_form
from solver.problem import Plan, Problem
from solver.shared import fold
from solver.solve import plan_of

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


def _below(cost: float, axis: Axis) -> float:
    """Return the largest cap that excludes a plan costing `cost` on `axis`."""
    return cost - 1 if axis == "params" else cost * (1 - _FLOAT_STEP)


def frontier(
    problem: Problem, axis: Axis = "params", max_points: int = 100, max_time_s: float = 120.0
) -> Frontier:
    """Return the gain-vs-`axis` Pareto frontier within the problem's other caps.

    Each point is the max-gain plan under a cap on `axis` (ties to the cheaper
    plan on that axis), found exactly. Caps start at the budget and descend to
    just below each point's cost, so no Pareto point is skipped; if there are
    more than `max_points`, the descent is redone with steps of at least
    1/max_points of the range, so the points span it (then `complete` is false).
    min_gain and the objective are ignored: the frontier spans all gains.
    """
    deadline = time.perf_counter() + max_time_s
    walk = _Descent(problem, axis, deadline)
    points, complete = walk.run(max_points, step=0.0)
    if not complete and points and walk.finished:
        span = getattr(points[0], axis) - walk.lowest
        points, _ = walk.run(max_points, step=span / max_points)
    return Frontier(axis=axis, points=points[::-1], complete=complete)


class _Descent:
    """Max-gain plans under descending caps on one axis."""

    def __init__(self, problem: Problem, axis: Axis, deadline: float):
        self.folded = fold(problem, memory_decides=axis == "memory_bytes")
        inst = self.inst = self.folded.instance
        self.axis, self.deadline = axis, deadline
        self.allowed = inst.fitting_alone()
        self.form = axis_form(inst, axis)
        self.base = KnapsackModel(inst, self.allowed)
        budget_cap = getattr(inst.problem.budget, axis)
        self.top = budget_cap if budget_cap is not None else math.fsum(self.form.x) + math.fsum(self.form.y)
        self.lowest = min((self.form.value([i], []) for i in self.allowed), default=math.inf)
        self.finished = True

    def run(self, max_points: int, step: float) -> tuple[list[Plan], bool]:
        """Return (points in descending cost, whether the exact descent reached the bottom).

        `finished` is false afterwards when the time limit stopped a solve.
        """
        start = time.perf_counter()
        points: list[Plan] = []
        cap = self.top
        while self.allowed and cap >= self.lowest and len(points) < max_points:
            model = self.base.clone()
            model.add_at_most(self.form, cap)
            out = model.maximize(
                gain_form(self.inst),
                time_limit_s=max(self.deadline - time.perf_counter(), 0.01),
                then_minimize=self.form,
            )
            if out.status != "optimal" or not out.selection:
                self.finished = out.status in ("optimal", "infeasible")
                return points, self.finished and step == 0.0
            plan = plan_of(self.folded.source_instance, self.folded.unfold(out.selection), "optimal", out.bound,
                           (time.perf_counter() - start) * 1e3)
            if not points or plan.gain < points[-1].gain:
                points.append(plan)
            cost = getattr(plan, self.axis)
            cap = min(_below(cost, self.axis), cost - step)
        return points, step == 0.0 and cap < self.lowest
