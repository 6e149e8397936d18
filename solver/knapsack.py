"""The multiple-choice knapsack with shared layer costs, as a CP-SAT model.

Variables: x[i] = candidate i chosen; y[k] = layer k (in index order) paid.
Layer k is paid when any chosen candidate sits at or below it, so
y[k-1] <= y[k] and x[i] <= y[layer(i)]. Minimal y is what a selection costs;
a larger y only adds cost, so no optimum needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ortools.sat.python import cp_model

from solver.instance import Instance
from solver.scaling import capacity_row, objective_terms

_STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.UNKNOWN: "unknown",
}


@dataclass(frozen=True)
class Form:
    """A linear expression: float coefficients on candidates (x) and layers (y)."""

    x: list[float]
    y: list[float]

    def scaled(self, factor: float) -> Form:
        """Return this form times `factor`."""
        return Form([v * factor for v in self.x], [v * factor for v in self.y])

    def plus(self, other: Form) -> Form:
        """Return the sum of two forms."""
        return Form(
            [a + b for a, b in zip(self.x, other.x, strict=True)],
            [a + b for a, b in zip(self.y, other.y, strict=True)],
        )

    def value(self, selection: list[int], layers: list[int]) -> float:
        """Return the form's float value at a selection paying `layers`."""
        return sum(self.x[i] for i in selection) + sum(self.y[k] for k in layers)


@dataclass(frozen=True)
class Outcome:
    """One CP-SAT run: status, chosen candidates, and the objective in float units."""

    status: str
    selection: list[int]
    value: float | None
    bound: float | None


Axis = Literal["params", "flops", "latency_ms", "memory_bytes"]


def axis_form(inst: Instance, axis: Axis) -> Form:
    """Return the cost form of one budget axis (layer costs on flops and memory)."""
    no_layers = [0.0] * len(inst.layer_index)
    if axis == "params":
        return Form([float(v) for v in inst.params], no_layers)
    if axis == "flops":
        return Form(list(inst.flops), list(inst.layer_flops))
    if axis == "latency_ms":
        return Form(list(inst.latency), no_layers)
    return Form(list(inst.memory), list(inst.layer_memory))


def budget_forms(inst: Instance) -> list[tuple[Form, float]]:
    """Return the (cost form, cap) rows of the budget: params, flops, optional latency, memory."""
    b = inst.problem.budget
    axes: list[Axis] = ["params", "flops", "latency_ms", "memory_bytes"]
    return [(axis_form(inst, a), cap) for a in axes if (cap := getattr(b, a)) is not None]


def gain_form(inst: Instance) -> Form:
    """Return the total-gain form."""
    return Form(list(inst.gain), [0.0] * len(inst.layer_index))


class KnapsackModel:
    """A CP-SAT model of the feasible plans; clone it per objective or extra row."""

    def __init__(self, inst: Instance, allowed: list[int], *, nonempty: bool = False):
        """Build x for `allowed` candidates (the rest stay unchosen), y, groups and budgets."""
        self.inst = inst
        self.model = cp_model.CpModel()
        self.x = {i: self.model.new_bool_var(f"x{i}") for i in allowed}
        self.y = [self.model.new_bool_var(f"y{k}") for k in range(len(inst.layer_index))]
        for k in range(1, len(self.y)):
            self.model.add_implication(self.y[k - 1], self.y[k])
        for i, var in self.x.items():
            if inst.layer_pos[i] is not None:
                self.model.add_implication(var, self.y[inst.layer_pos[i]])
        for members in inst.groups.values():
            chosen = [self.x[i] for i in members if i in self.x]
            if len(chosen) > 1:
                self.model.add_at_most_one(chosen)
        if nonempty:
            self.model.add_bool_or(list(self.x.values()))
        for form, cap in budget_forms(inst):
            self.add_at_most(form, cap)

    def clone(self) -> KnapsackModel:
        """Return an independent copy sharing the variable layout."""
        other = object.__new__(KnapsackModel)
        other.inst = self.inst
        other.model = self.model.clone()
        other.x = {i: other.model.get_bool_var_from_proto_index(v.index) for i, v in self.x.items()}
        other.y = [other.model.get_bool_var_from_proto_index(v.index) for v in self.y]
        return other

    def _terms(self, form: Form) -> tuple[list[cp_model.IntVar], list[float]]:
        keys = list(self.x)
        return [*(self.x[i] for i in keys), *self.y], [*(form.x[i] for i in keys), *form.y]

    def add_at_most(self, form: Form, cap: float, *, loose: bool = False) -> None:
        """Add `form <= cap`, rounded so no float-infeasible plan passes (or, `loose`, none is cut)."""
        variables, coefs = self._terms(form)
        ints, int_cap = capacity_row(coefs, cap, loose=loose)
        self.model.add(cp_model.LinearExpr.weighted_sum(variables, ints) <= int_cap)

    def add_at_least(self, form: Form, floor: float, *, loose: bool = False) -> None:
        """Add `form >= floor` with the same rounding guarantee as `add_at_most`."""
        self.add_at_most(form.scaled(-1.0), -floor, loose=loose)

    def maximize(
        self,
        objective: Form,
        *,
        time_limit_s: float,
        hint: list[int] | None = None,
        then_minimize: Form | None = None,
    ) -> Outcome:
        """Maximize `objective`; with `then_minimize`, break ties by the smaller second form.

        Returns the selection as candidate positions and the objective as the
        scaled integer optimum divided back to float units (within half a unit
        of 2**-40 of the coefficient magnitudes per chosen term).
        """
        variables, coefs = self._terms(objective)
        ints, scale = objective_terms(coefs)
        expr = cp_model.LinearExpr.weighted_sum(variables, ints)
        self.model.clear_hints()
        if hint is not None:
            chosen = set(hint)
            for i, var in self.x.items():
                self.model.add_hint(var, i in chosen)
        self.model.maximize(expr)
        solver = _new_solver(time_limit_s)
        status = solver.solve(self.model)
        outcome = self._outcome(solver, status, scale)
        if then_minimize is None or outcome.status != "optimal":
            return outcome
        stage = self.clone()
        stage_vars, _ = stage._terms(objective)
        stage.model.add(cp_model.LinearExpr.weighted_sum(stage_vars, ints) >= round(solver.objective_value))
        stage.model.clear_hints()
        for var, first in zip(stage_vars, variables, strict=True):
            stage.model.add_hint(var, solver.value(first))
        second_ints, _ = objective_terms(stage._terms(then_minimize)[1])
        stage.model.minimize(cp_model.LinearExpr.weighted_sum(stage_vars, second_ints))
        second = _new_solver(time_limit_s)
        if second.solve(stage.model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return outcome
        return Outcome(
            status="optimal",
            selection=[i for i, var in stage.x.items() if second.value(var)],
            value=outcome.value,
            bound=outcome.bound,
        )

    def _outcome(self, solver: cp_model.CpSolver, status: int, scale: float) -> Outcome:
        name = _STATUS.get(status)
        if name is None:
            raise RuntimeError(f"CP-SAT rejected the model: {solver.status_name(status)}")
        if name in ("infeasible", "unknown"):
            return Outcome(name, [], None, None)
        return Outcome(
            status=name,
            selection=[i for i, var in self.x.items() if solver.value(var)],
            value=solver.objective_value / scale,
            bound=solver.best_objective_bound / scale,
        )


def _new_solver(time_limit_s: float) -> cp_model.CpSolver:
    """Return a deterministic CP-SAT solver: one worker, fixed seed, presolve off.

    Presolve is off because it slowed these knapsacks and, in CP-SAT 9.x, could
    certify a wrong optimum on models with at-most-one groups (issue #5293).
    """
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = 1
    params.random_seed = 0
    params.cp_model_presolve = False
    params.absolute_gap_limit = 0.0
    params.relative_gap_limit = 0.0
    params.max_time_in_seconds = max(time_limit_s, 0.01)
    return solver
