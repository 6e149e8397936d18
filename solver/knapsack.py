"""The multiple-choice knapsack with shared layer costs, solved exactly by its earliest layer.

Linear forms are written over x[i] (candidate i chosen) and y[k] (layer k, in
index order, paid). A plan pays every layer from its earliest adapted one to
the top, so fixing that earliest layer e (or none) splits the plans into
disjoint parts, and in each part the layer terms are constants. There the
groups at layers above e are interchangeable wherever their options have the
same coefficients in every row and in the objective: they form one class,
chosen as counts (how many of its groups take each option). So a part is a
small integer program for CP-SAT instead of hundreds of symmetric booleans
(prior or per-method gains tie whole layers, which stalled one CP-SAT model
of all parts at its time limit).

Parts are solved best bound first. A part's bound is Lagrangian: for any
multipliers lambda >= 0 of the rows, lambda . caps + sum over groups of
max(0, best option's objective - lambda . its row coefficients) bounds it;
the multipliers come from the LP duals of the widest part (one GLOP solve),
then of the part itself. The search stops when no part left can beat the
incumbent; ties on the objective go to the smaller `then_minimize`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from solver.instance import Instance
from solver.scaling import capacity_row, objective_terms

# Relative slack of objective comparisons between parts (their integer scales differ).
_TIE_RTOL = 1e-12

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


@dataclass(frozen=True)
class _Row:
    """One constraint `form <= cap`; `loose` rounds so that no float-feasible plan is cut."""

    form: Form
    cap: float
    loose: bool


class KnapsackModel:
    """The feasible plans: allowed candidates, at most one per group, budget rows and added rows."""

    def __init__(self, inst: Instance, allowed: list[int], *, nonempty: bool = False):
        """Admit `allowed` candidates (the rest stay unchosen) under the budget's rows."""
        self.inst = inst
        self.allowed = sorted(allowed)
        self.nonempty = nonempty
        self.rows = [_Row(form, cap, False) for form, cap in budget_forms(inst)]

    def clone(self) -> KnapsackModel:
        """Return a copy whose added rows do not reach this model."""
        other = copy.copy(self)
        other.rows = list(self.rows)
        return other

    def add_at_most(self, form: Form, cap: float, *, loose: bool = False) -> None:
        """Add `form <= cap`, rounded so no float-infeasible plan passes (or, `loose`, none is cut)."""
        self.rows.append(_Row(form, cap, loose))

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

        Returns the selection as candidate positions and the objective's float
        value at it; `bound` is proven (equal to the value when optimal). A
        feasible `hint` is the first incumbent. Part optima are exact in
        integers scaled to 2**-40 of each part's objective magnitude.
        """
        forms = [objective, *(row.form for row in self.rows)]
        if then_minimize is not None:
            forms.append(then_minimize)
        parts = _Parts(self, forms)
        search = _Search(parts, time.perf_counter() + time_limit_s)
        if hint is not None and then_minimize is None:
            search.offer_hint(hint)
        return search.run()


@dataclass
class _Class:
    """Interchangeable groups of one part: `count` of them, each taking at most one option.

    `options` are rows of coefficients (objective, rows, second form); `at`
    marks options at the part's earliest layer; `members[g][j]` is the
    candidate of group g for option j.
    """

    options: np.ndarray
    at: list[bool]
    count: int
    members: list[list[int]]


class _Parts:
    """The allowed candidates as classes of interchangeable groups, for each earliest layer.

    Part e < K holds the plans whose earliest layer is e (K = number of
    layers); part K the plans with no layered candidate. A candidate at
    position p (K when it has no layer) is in parts e <= p.
    """

    def __init__(self, model: KnapsackModel, forms: list[Form]):
        inst = model.inst
        self.model, self.forms = model, forms
        self.n_layers = n_layers = len(inst.layer_index)
        self.caps = np.array([row.cap for row in model.rows])
        cand = model.allowed
        matrix = np.column_stack([np.asarray(f.x, dtype=float)[cand] for f in forms]) if cand else np.zeros((0, len(forms)))
        # Layer terms paid from part e on: suffix[e, f] = sum of forms[f].y[e:].
        ys = np.array([f.y for f in forms], dtype=float).reshape(len(forms), n_layers).T
        self.suffix = np.vstack([np.cumsum(ys[::-1], axis=0)[::-1], np.zeros((1, len(forms)))])
        groups: dict[object, list[int]] = {}
        for row, i in enumerate(cand):
            group = inst.problem.candidates[i].group
            groups.setdefault(("g", group) if group is not None else ("c", i), []).append(row)
        self.cand, self.matrix = cand, matrix
        pos = [n_layers if inst.layer_pos[i] is None else inst.layer_pos[i] for i in cand]
        by_signature: dict[tuple, list[tuple[int, list[int]]]] = {}
        self.mixed: list[list[tuple[int, int]]] = []
        for rows in groups.values():
            positions = {pos[r] for r in rows}
            if len(positions) > 1:
                self.mixed.append([(pos[r], r) for r in rows])
                continue
            first: dict[bytes, int] = {}
            for r in rows:
                first.setdefault(matrix[r].tobytes(), r)
            signature = tuple(sorted(first))
            by_signature.setdefault(signature, []).append((pos[rows[0]], [first[s] for s in signature]))
        # One entry per signature: its option rows, and its groups sorted by position.
        self.signatures = []
        for entries in by_signature.values():
            entries.sort(key=lambda e: (e[0], e[1][0]))
            self.signatures.append(
                (
                    matrix[entries[0][1]],
                    np.array([p for p, _ in entries]),
                    [[cand[r] for r in members] for _, members in entries],
                )
            )
        # counts[e, s]: groups of signature s in part e (at position >= e).
        self.counts = np.zeros((n_layers + 1, len(self.signatures)), dtype=np.int64)
        for s, (_, positions, _) in enumerate(self.signatures):
            hist = np.bincount(positions, minlength=n_layers + 1)
            self.counts[:, s] = np.cumsum(hist[::-1])[::-1]
        if self.signatures:
            self.owner = np.concatenate([np.full(len(opt), s) for s, (opt, _, _) in enumerate(self.signatures)])
            self.options = np.vstack([opt for opt, _, _ in self.signatures])
            self.starts = np.concatenate([[0], np.cumsum([len(opt) for opt, _, _ in self.signatures])[:-1]])
        self.n_rows = len(model.rows)
        # A part e < K needs a candidate at layer e; part K is the empty plan's, unless plans must be non-empty.
        self.empty = np.ones(n_layers + 1, dtype=bool)
        for r in range(len(cand)):
            self.empty[pos[r]] = False
        if not model.nonempty:
            self.empty[n_layers] = False

    def bounds(self, lam: np.ndarray) -> np.ndarray:
        """Return each part's Lagrangian upper bound on the objective at row multipliers `lam` >= 0."""
        rows = slice(1, 1 + self.n_rows)
        out = self.suffix[:, 0] + (self.caps[None, :] - self.suffix[:, rows]) @ lam
        out[self.empty] = -math.inf
        if self.signatures:
            reduced = self.options[:, 0] - self.options[:, rows] @ lam
            best = np.maximum(np.maximum.reduceat(reduced, self.starts), 0.0)
            out = out + self.counts @ best
        for members in self.mixed:
            for e in range(self.n_layers + 1):
                values = [self.matrix[r, 0] - self.matrix[r, rows] @ lam for p, r in members if p >= e]
                out[e] += max([0.0, *values])
        return out

    def second_floor(self, e: int) -> float:
        """Return a lower bound of the second form over part e's plans."""
        col = len(self.forms) - 1
        out = self.suffix[e, col]
        if self.signatures:
            least = np.minimum(np.minimum.reduceat(self.options[:, col], self.starts), 0.0)
            out += float(self.counts[e] @ least)
        for members in self.mixed:
            out += min([0.0, *(self.matrix[r, col] for p, r in members if p >= e)])
        return float(out)

    def classes(self, e: int) -> list[_Class]:
        """Return part e's classes: per signature, its groups at layer e and those above."""
        out = []
        for options, positions, members in self.signatures:
            lo, hi = np.searchsorted(positions, e, "left"), np.searchsorted(positions, e, "right")
            if e == self.n_layers:
                hi = lo
            if hi > lo:
                out.append(_Class(options, [True] * len(options), int(hi - lo), members[lo:hi]))
            if len(positions) > hi:
                out.append(_Class(options, [False] * len(options), int(len(positions) - hi), members[hi:]))
        for group in self.mixed:
            chosen = [(p, r) for p, r in group if p >= e]
            if chosen:
                out.append(
                    _Class(
                        self.matrix[[r for _, r in chosen]],
                        [p == e < self.n_layers for p, _ in chosen],
                        1,
                        [[self.cand[r] for _, r in chosen]],
                    )
                )
        return out

    def lp_multipliers(self, e: int) -> np.ndarray | None:
        """Return the row duals of part e's LP relaxation (GLOP), or None when that LP is infeasible."""
        lp = pywraplp.Solver.CreateSolver("GLOP")
        rows = range(1, 1 + self.n_rows)
        terms: list[list[tuple[pywraplp.Variable, float]]] = [[] for _ in rows]
        objective = lp.Objective()
        for cls in self.classes(e):
            variables = [lp.NumVar(0.0, cls.count, "") for _ in cls.at]
            if len(variables) > 1:
                limit = lp.Constraint(0.0, cls.count)
                for v in variables:
                    limit.SetCoefficient(v, 1.0)
            for v, coefs in zip(variables, cls.options, strict=True):
                objective.SetCoefficient(v, float(coefs[0]))
                for r in rows:
                    if coefs[r] != 0.0:
                        terms[r - 1].append((v, float(coefs[r])))
        constraints = []
        for r, row_terms in zip(rows, terms, strict=True):
            c = lp.Constraint(-lp.infinity(), float(self.caps[r - 1] - self.suffix[e, r]))
            for v, coef in row_terms:
                c.SetCoefficient(v, coef)
            constraints.append(c)
        objective.SetMaximization()
        status = lp.Solve()
        if status == pywraplp.Solver.INFEASIBLE:
            return None
        if status != pywraplp.Solver.OPTIMAL:
            return np.zeros(self.n_rows)
        return np.array([max(c.dual_value(), 0.0) for c in constraints])


@dataclass
class _Solved:
    """Part e's optimum: selection, float objective value, and its CP-SAT model for a second stage."""

    e: int
    selection: list[int]
    value: float
    stage: tuple | None = None


class _Search:
    """Best-bound search over the parts of one maximization."""

    def __init__(self, parts: _Parts, deadline: float):
        self.parts, self.deadline = parts, deadline
        self.bound = parts.bounds(np.zeros(parts.n_rows))
        self.best: _Solved | None = None
        self.best_second = math.inf
        self.ties: list[_Solved] = []
        self.second = len(parts.forms) > 1 + parts.n_rows

    def value_of(self, selection: list[int], col: int) -> float:
        """Return forms[col] at `selection`, paying the layers it reaches (exact float sum)."""
        inst, form = self.parts.model.inst, self.parts.forms[col]
        first = inst.earliest_layer(selection)
        paid = range(first, self.parts.n_layers) if first is not None else range(0)
        return math.fsum([*(form.x[i] for i in selection), *(form.y[k] for k in paid)])

    def offer_hint(self, hint: list[int]) -> None:
        """Take `hint` as the incumbent when it is a feasible plan of the model."""
        model = self.parts.model
        allowed = set(model.allowed)
        groups = [model.inst.problem.candidates[i].group for i in hint]
        named = [g for g in groups if g is not None]
        if not hint and model.nonempty or any(i not in allowed for i in hint) or len(set(named)) < len(named):
            return
        for col, row in enumerate(model.rows, start=1):
            if self.value_of(hint, col) > row.cap:
                return
        self.best = _Solved(-1, sorted(hint), self.value_of(hint, 0))

    def beats(self, bound: float, e: int) -> bool:
        """True when part e (bounded by `bound`) may hold a plan better than the incumbent."""
        if self.best is None:
            return True
        slack = _TIE_RTOL * max(1.0, abs(self.best.value))
        if bound > self.best.value + slack:
            return True
        return self.second and bound >= self.best.value - slack and self.parts.second_floor(e) < self.best_second

    def run(self) -> Outcome:
        """Return the search's outcome: optimal when every part is settled before the deadline."""
        open_parts = {e for e in range(self.parts.n_layers + 1) if not self.parts.empty[e]}
        while open_parts:
            e = max(open_parts, key=lambda k: (self.bound[k], -k))
            if not self.beats(self.bound[e], e):
                break
            if time.perf_counter() >= self.deadline:
                return self._unfinished(open_parts)
            lam = self.parts.lp_multipliers(e)
            if lam is None:
                open_parts.discard(e)
                continue
            self.bound = np.minimum(self.bound, self.parts.bounds(lam))
            if not self.beats(self.bound[e], e):
                open_parts.discard(e)
                continue
            settled = self._solve_part(e)
            if not settled:
                return self._unfinished(open_parts)
            open_parts.discard(e)
        return self._finish()

    def _solve_part(self, e: int) -> bool:
        """Solve part e with a cutoff at the incumbent; False when the deadline stopped it."""
        parts = self.parts
        classes = parts.classes(e)
        layers = range(e, parts.n_layers)
        model = cp_model.CpModel()
        variables, counts, at = [], [], []
        for cls in classes:
            zs = [model.new_int_var(0, cls.count, "") for _ in cls.at]
            if len(zs) > 1:
                model.add(sum(zs) <= cls.count)
            variables += zs
            counts += [cls.count] * len(zs)
            at += [z for z, flag in zip(zs, cls.at, strict=True) if flag]
        if e < parts.n_layers:
            if not at:
                return True
            model.add(sum(at) >= 1)
        elif parts.model.nonempty:
            if not variables:
                return True
            model.add(sum(variables) >= 1)
        coef_rows = np.vstack([cls.options for cls in classes]) if classes else np.zeros((0, len(parts.forms)))
        weights = [*counts, *([1] * len(layers))]

        def integer_terms(col: int, row: _Row | None):
            coefs = [*coef_rows[:, col].tolist(), *(parts.forms[col].y[k] for k in layers)]
            if row is None:
                ints, scale = objective_terms(coefs, weights)
                return ints[: len(variables)], sum(ints[len(variables):]), scale
            ints, cap = capacity_row(coefs, row.cap, loose=row.loose, counts=weights)
            return ints[: len(variables)], cap - sum(ints[len(variables):]), 1.0

        for col, row in enumerate(parts.model.rows, start=1):
            ints, room, _ = integer_terms(col, row)
            if any(ints):
                model.add(cp_model.LinearExpr.weighted_sum(variables, ints) <= room)
            elif room < 0:
                return True
        obj_ints, obj_const, scale = integer_terms(0, None)
        expr = cp_model.LinearExpr.weighted_sum(variables, obj_ints)
        if self.best is not None:
            slack = math.ceil(0.5 * (sum(weights) + 1)) + 1
            model.add(expr >= math.floor(self.best.value * scale) - obj_const - slack)
        model.maximize(expr)
        solver = _new_solver(self.deadline - time.perf_counter())
        status = solver.solve(model)
        if status == cp_model.INFEASIBLE:
            return True
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            if status == cp_model.MODEL_INVALID:
                raise RuntimeError(f"CP-SAT rejected the model: {solver.status_name(status)}")
            return False
        selection = _selection(classes, [solver.value(z) for z in variables])
        found = _Solved(e, selection, self.value_of(selection, 0), (model, variables, weights, expr, solver.value(expr), coef_rows, layers))
        if status == cp_model.FEASIBLE:
            self._offer(found)
            self.bound[e] = min(self.bound[e], (solver.best_objective_bound + obj_const) / scale)
            return False
        self._offer(found)
        return True

    def _offer(self, found: _Solved) -> None:
        """Record a part's plan: the incumbent when better, a tie when equal within the tolerance."""
        if self.best is not None:
            slack = _TIE_RTOL * max(1.0, abs(self.best.value))
            if found.value < self.best.value - slack:
                return
            if found.value <= self.best.value + slack:
                self.ties.append(found)
                if self.second:
                    self.best_second = min(self.best_second, self.value_of(found.selection, -1))
                return
        self.best, self.ties = found, [found]
        if self.second:
            self.best_second = self.value_of(found.selection, -1)

    def _unfinished(self, open_parts: set[int]) -> Outcome:
        """Return the outcome when the deadline stopped the search: the incumbent and a proven bound."""
        bound = max(float(self.bound[e]) for e in open_parts)
        if self.best is None:
            return Outcome("unknown", [], None, bound)
        return Outcome("feasible", self.best.selection, self.best.value, max(bound, self.best.value))

    def _finish(self) -> Outcome:
        """Return the proven optimum; with a second form, the tied plan that minimizes it."""
        if self.best is None:
            return Outcome("infeasible", [], None, None)
        chosen = self.best
        if self.second:
            scored = []
            for found in self.ties:
                if found.stage is not None:
                    found = self._second_stage(found)
                scored.append((self.value_of(found.selection, -1), found.e, found))
            chosen = min(scored, key=lambda t: (t[0], t[1]))[2]
        return Outcome("optimal", chosen.selection, chosen.value, chosen.value)

    def _second_stage(self, found: _Solved) -> _Solved:
        """Return part `found.e`'s plan of equal objective and least second form."""
        model, variables, weights, expr, optimum, coef_rows, layers = found.stage
        col = len(self.parts.forms) - 1
        coefs = [*coef_rows[:, col].tolist(), *(self.parts.forms[col].y[k] for k in layers)]
        ints, _ = objective_terms(coefs, weights)
        model.add(expr >= optimum)
        model.minimize(cp_model.LinearExpr.weighted_sum(variables, ints[: len(variables)]))
        solver = _new_solver(max(self.deadline - time.perf_counter(), 0.05))
        if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return found
        selection = _selection(self.parts.classes(found.e), [solver.value(z) for z in variables])
        return _Solved(found.e, selection, self.value_of(selection, 0))


def _selection(classes: list[_Class], values: list[int]) -> list[int]:
    """Return the candidates of a part's solution: each class's counts dealt to its groups in order."""
    out: list[int] = []
    it = iter(values)
    for cls in classes:
        group = 0
        for j in range(len(cls.at)):
            for _ in range(next(it)):
                out.append(cls.members[group][j])
                group += 1
    return sorted(out)


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
