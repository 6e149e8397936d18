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
the multipliers come from the LP duals (HiGHS) of the part
taken, which also bound every other part. The search stops when no part left can beat the
incumbent; ties on the objective go to the smaller `then_minimize`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import highspy
import numpy as np
from highspy._core import _Highs  # the bare solver: highspy.Highs adds callbacks and prints a banner on stdout
from ortools.sat.python import cp_model

from solver.instance import Instance
from solver.scaling import capacity_row, objective_terms

# Relative slack of objective comparisons between parts (their integer scales differ).
_TIE_RTOL = 1e-12
# The part of the virtual incumbent that stands for `maximize(floor=...)`.
_FLOOR = -2
# Relative margin of reduced-cost fixing, for the float error of the bound it is computed from.
_FIX_RTOL = 1e-9
# Most states the dynamic program of a part may keep after one group; past it CP-SAT solves the part.
_DP_MAX_STATES = 5_000
# States a beam pass of that program keeps (those of least loss), to find an incumbent that tightens it.
_DP_BEAM = 50
# The program goes first in a part of at most this many groups per class; CP-SAT's counts alone in the others.
_DP_GROUPS_PER_CLASS = 1.5

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
    """One maximization: status (optimal, feasible, infeasible, unknown, below_floor), chosen candidates, the
    objective's float value at them, and its proven upper bound."""

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

    @cached_property
    def group_rows(self) -> list[list[int]]:
        """Return the allowed candidates' groups, as lists of their positions in `allowed`."""
        groups: dict[object, list[int]] = {}
        for row, i in enumerate(self.allowed):
            group = self.inst.problem.candidates[i].group
            groups.setdefault(("g", group) if group is not None else ("c", i), []).append(row)
        return list(groups.values())

    @cached_property
    def positions(self) -> list[int]:
        """Return each allowed candidate's layer position (the number of layers when it has none)."""
        n_layers = len(self.inst.layer_index)
        return [n_layers if self.inst.layer_pos[i] is None else self.inst.layer_pos[i] for i in self.allowed]

    def clone(self) -> KnapsackModel:
        """Return a copy whose added rows do not reach this model (it shares the groups, positions and layouts)."""
        _ = self.group_rows, self.positions, self.layouts
        other = copy.copy(self)
        other.rows = list(self.rows)
        return other

    @cached_property
    def layouts(self) -> list[_Layout]:
        """Return the latest layout built (a list shared with the clones, empty before the first)."""
        return []

    def layout(self, matrix: np.ndarray) -> _Layout:
        """Return the classes of the allowed candidates whose coefficients (a row per candidate) are `matrix`.

        Rows equal in every form are one option. Successive maximizations over one model (the efficiency
        search's) mostly leave the latest layout valid, its options' rows still equal, which is checked: the
        rows are partitioned again only when they are not.
        """
        for layout in self.layouts:
            if np.array_equal(matrix[layout.first_rows[layout.option_of]], matrix):
                return layout
        self.layouts[:] = [_Layout.build(self, *_options_of(matrix))]
        return self.layouts[0]

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
        floor: float | None = None,
    ) -> Outcome:
        """Maximize `objective`; with `then_minimize`, break ties by the smaller second form.

        Returns the selection as candidate positions and the objective's float
        value at it; `bound` is proven (equal to the value when optimal). A
        feasible `hint` is the first incumbent. With `floor`, only plans above it
        are sought: status "below_floor" says no plan's objective exceeds it,
        which prunes every part whose bound does not. Part optima are exact in
        integers scaled to 2**-40 of each part's objective magnitude.
        """
        forms = [objective, *(row.form for row in self.rows)]
        if then_minimize is not None:
            forms.append(then_minimize)
        parts = _Parts(self, forms)
        search = _Search(parts, time.perf_counter() + time_limit_s)
        if floor is not None and then_minimize is None:
            search.best = _Solved(_FLOOR, [], floor)
        if hint is not None and then_minimize is None:
            search.offer_hint(hint)
        return search.run()


@dataclass
class _Table:
    """Part e's classes as arrays; a class is `count[c]` interchangeable groups, each taking one option or none.

    Option k has coefficients `options[k]` (objective, rows, second form),
    belongs to class `owner[k]`, and is `at` the part's earliest layer or
    not; `groups[c][g][slot[k]]` is the candidate of group g of class c for option k.
    """

    options: np.ndarray
    owner: np.ndarray
    count: np.ndarray
    at: np.ndarray
    groups: list[list[list[int]]]
    slot: np.ndarray

    def restricted(self, keep: np.ndarray) -> _Table:
        """Return the table of the options `keep` marks (the classes and their groups stay)."""
        return _Table(self.options[keep], self.owner[keep], self.count, self.at[keep], self.groups, self.slot[keep])


@dataclass(frozen=True)
class _Layout:
    """The allowed candidates as classes, for one partition of their rows into options.

    A group's signature is its set of options; groups of one signature are interchangeable.
    Signature s has `n_options[s]` options, at rows `rows[starts[s]:][:n_options[s]]` of the
    candidate matrix (`owner` names each option's signature), and `members[s]` lists its
    groups' candidates (per option) by position; `counts[e, s]` of them are in part e,
    `at_counts[e, s]` at layer e. `mixed` are the groups spanning several layers, as
    (position, row) pairs, `mixed_at[e]` says one has an option at layer e, and `empty[e]`
    that part e has no plan for want of candidates. Row r is option `option_of[r]`, whose first row is
    `first_rows[option_of[r]]`.
    """

    rows: np.ndarray
    n_options: np.ndarray
    owner: np.ndarray
    starts: np.ndarray
    members: list[list[list[int]]]
    counts: np.ndarray
    at_counts: np.ndarray
    mixed: list[list[tuple[int, int]]]
    mixed_at: np.ndarray
    empty: np.ndarray
    option_of: np.ndarray
    first_rows: np.ndarray

    @classmethod
    def build(cls, model: KnapsackModel, option_of: np.ndarray, first_rows: np.ndarray) -> _Layout:
        """Return the layout of `model`'s allowed candidates when row r is option `option_of[r]`, whose first row
        is `first_rows[option_of[r]]`."""
        n_layers, cand, pos = len(model.inst.layer_index), model.allowed, model.positions
        numbers = option_of.tolist()
        by_signature: dict[tuple, list[tuple[int, list[int]]]] = {}
        mixed: list[list[tuple[int, int]]] = []
        for rows in model.group_rows:
            if len({pos[r] for r in rows}) > 1:
                mixed.append([(pos[r], r) for r in rows])
                continue
            first: dict[int, int] = {}
            for r in rows:
                first.setdefault(numbers[r], r)
            signature = tuple(sorted(first))
            by_signature.setdefault(signature, []).append((pos[rows[0]], [first[s] for s in signature]))
        # Per signature: its option rows (those of its first group), and its groups sorted by position.
        option_rows, positions, members = [], [], []
        for entries in by_signature.values():
            entries.sort(key=lambda e: (e[0], e[1][0]))
            option_rows.append(entries[0][1])
            positions.append([p for p, _ in entries])
            members.append([[cand[r] for r in rows] for _, rows in entries])
        n_options = np.array([len(rows) for rows in option_rows], dtype=np.int64)
        hist = np.zeros((n_layers + 1, len(members)), dtype=np.int64)
        if members:
            owners = np.repeat(np.arange(len(members)), [len(p) for p in positions])
            np.add.at(hist, (np.concatenate(positions), owners), 1)
        at_counts = np.zeros_like(hist)
        at_counts[:n_layers] = hist[:n_layers]
        mixed_at = np.zeros(n_layers, dtype=bool)
        for group in mixed:
            for p, _ in group:
                if p < n_layers:
                    mixed_at[p] = True
        # A part e < K needs a candidate at layer e; part K is the empty plan's, unless plans must be non-empty.
        empty = np.ones(n_layers + 1, dtype=bool)
        empty[np.asarray(pos, dtype=np.int64)] = False
        if not model.nonempty:
            empty[n_layers] = False
        return cls(
            rows=np.array([r for rows in option_rows for r in rows], dtype=np.int64), n_options=n_options,
            owner=np.repeat(np.arange(len(members)), n_options), starts=np.cumsum(n_options) - n_options,
            members=members, counts=np.cumsum(hist[::-1], axis=0)[::-1], at_counts=at_counts,
            mixed=mixed, mixed_at=mixed_at, empty=empty, option_of=option_of, first_rows=first_rows,
        )


def _options_of(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's option and each option's first row: rows with equal coefficients in every form are one
    option, numbered in the order of their first row."""
    if not len(matrix):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(matrix, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    number = np.empty(len(first), dtype=np.int64)
    number[order] = np.arange(len(first))
    return number[inverse.reshape(-1)], first[order]


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
        self.cand, self.matrix = cand, matrix
        self.layout = layout = model.layout(matrix)
        self.mixed, self.counts, self.at_counts = layout.mixed, layout.counts, layout.at_counts
        self.n_options, self.owner, self.starts = layout.n_options, layout.owner, layout.starts
        self.mixed_at = layout.mixed_at
        self.options = matrix[layout.rows] if len(layout.rows) else np.zeros((0, len(forms)))
        self.n_rows = len(model.rows)
        self.empty = layout.empty.copy()
        # A part whose least possible value of some row exceeds its cap has no plan (min_gain rules out the
        # parts that start too high): found here instead of by one infeasible LP per part and maximization.
        floors = self.row_floors()
        margin = _FIX_RTOL * np.maximum(1.0, np.maximum(np.abs(floors), np.abs(self.caps)[None, :]))
        self.empty |= np.any(floors > self.caps[None, :] + margin, axis=1)

    def bounds(self, lam: np.ndarray) -> np.ndarray:
        """Return each part's Lagrangian upper bound on the objective at row multipliers `lam` >= 0."""
        rows = slice(1, 1 + self.n_rows)
        out = self.suffix[:, 0] + (self.caps[None, :] - self.suffix[:, rows]) @ lam
        out[self.empty] = -math.inf
        if len(self.n_options):
            reduced = self.options[:, 0] - self.options[:, rows] @ lam
            best = np.maximum.reduceat(reduced, self.starts)
            out = out + self.counts @ np.maximum(best, 0.0)
            # Part e < K takes an option at layer e: when none there has a positive reduced objective, the
            # best of them is paid (the optimal multiplier of that requirement, found in closed form).
            at_best = np.where(self.at_counts[: self.n_layers] > 0, best[None, :], -math.inf).max(axis=1)
            out[: self.n_layers] += np.where(self.mixed_at, 0.0, np.minimum(at_best, 0.0))
        for members in self.mixed:
            for e in range(self.n_layers + 1):
                values = [self.matrix[r, 0] - self.matrix[r, rows] @ lam for p, r in members if p >= e]
                out[e] += max([0.0, *values])
        return out

    def row_floors(self) -> np.ndarray:
        """Return [part, row]: the least value each row can take over the part's plans (a relaxation)."""
        rows = slice(1, 1 + self.n_rows)
        out = self.suffix[:, rows].copy()
        if len(self.n_options):
            least = np.minimum.reduceat(self.options[:, rows], self.starts, axis=0)
            out += self.counts @ np.minimum(least, 0.0)
            at_least = np.where((self.at_counts[: self.n_layers] > 0)[:, :, None], least[None, :, :], math.inf).min(axis=1)
            out[: self.n_layers] += np.where(self.mixed_at[:, None], 0.0, np.maximum(at_least, 0.0))
        for members in self.mixed:
            for e in range(self.n_layers + 1):
                coefs = [self.matrix[r, rows] for p, r in members if p >= e]
                if coefs:
                    out[e] += np.minimum(np.min(coefs, axis=0), 0.0)
        return out

    @cached_property
    def second_floors(self) -> np.ndarray:
        """Return, per part, a lower bound of the last form (the second objective) over its plans."""
        col = len(self.forms) - 1
        out = self.suffix[:, col].copy()
        if len(self.n_options):
            least = np.minimum(np.minimum.reduceat(self.options[:, col], self.starts), 0.0)
            out += self.counts @ least
        for members in self.mixed:
            for e in range(self.n_layers + 1):
                out[e] += min([0.0, *(self.matrix[r, col] for p, r in members if p >= e)])
        return out

    def table(self, e: int) -> _Table:
        """Return part e's classes: per signature, its groups at layer e and (another class) those above."""
        ge = self.counts[e]
        at_count = self.at_counts[e]
        above = ge - at_count
        at_sigs, above_sigs = np.nonzero(at_count)[0], np.nonzero(above)[0]
        sigs = np.concatenate([at_sigs, above_sigs]).astype(np.int64)
        count = np.concatenate([at_count[at_sigs], above[above_sigs]]).astype(np.int64)
        n_options = self.n_options[sigs]
        owner = np.repeat(np.arange(len(sigs)), n_options)
        first = np.cumsum(n_options) - n_options
        rows = np.repeat(self.starts[sigs] - first, n_options) + np.arange(int(n_options.sum()))
        at = np.repeat(np.arange(len(sigs)) < len(at_sigs), n_options)
        groups = []
        for c, sig in enumerate(sigs.tolist()):
            members = self.layout.members[sig]
            lo = len(members) - int(ge[sig]) + (0 if c < len(at_sigs) else int(at_count[sig]))
            groups.append(members[lo: lo + int(count[c])])
        options = self.options[rows] if len(rows) else np.zeros((0, len(self.forms)))
        all_options, all_owner, all_at, all_count = [options], [owner], [at], [count]
        for members in self.mixed:
            chosen = [(p, r) for p, r in members if p >= e]
            if chosen:
                all_options.append(self.matrix[[r for _, r in chosen]])
                all_owner.append(np.full(len(chosen), len(groups)))
                all_at.append(np.array([p == e < self.n_layers for p, _ in chosen]))
                all_count.append(np.array([1]))
                groups.append([[self.cand[r] for _, r in chosen]])
        owner = np.concatenate(all_owner).astype(np.int64)
        first = np.searchsorted(owner, np.arange(len(groups)))
        return _Table(
            np.vstack(all_options), owner, np.concatenate(all_count).astype(np.int64),
            np.concatenate(all_at).astype(bool), groups, np.arange(len(owner)) - first[owner],
        )

    def lp_bound(self, e: int, table: _Table) -> _Relaxed | None:
        """Return part e's LP relaxation (its duals, Lagrangian bound and solution), or None when infeasible.

        The LP relaxes the counts to reals; it keeps the groups, the rows and
        (part e < K) the need for an option at layer e, whose multiplier mu enters
        the part's own bound.
        """
        rows = slice(1, 1 + self.n_rows)
        return self._relaxation(e, table, table.options[:, 0], float(self.suffix[e, 0]), table.options[:, rows],
                                self.caps - self.suffix[e, rows])

    def tie_bound(self, e: int, table: _Table, floor: float) -> _Relaxed | None:
        """Return the LP relaxation of part e's plans of objective at least `floor`, maximizing the negated
        second form (so minus its bound is a proven least second form over them), or None when infeasible."""
        rows = slice(1, 1 + self.n_rows)
        coefs = np.column_stack([table.options[:, rows], -table.options[:, 0]])
        caps = np.append(self.caps - self.suffix[e, rows], self.suffix[e, 0] - floor)
        return self._relaxation(e, table, -table.options[:, -1], -float(self.suffix[e, -1]), coefs, caps)

    def _relaxation(self, e: int, table: _Table, objective: np.ndarray, constant: float, coefs: np.ndarray,
                    caps: np.ndarray) -> _Relaxed | None:
        """Return the LP relaxation of max constant + objective . counts over part e's classes with rows
        coefs . counts <= caps, and its Lagrangian bound at the LP duals; None when infeasible."""
        n, n_rows = len(table.owner), len(caps)
        needs_at = e < self.n_layers
        if n == 0:
            if needs_at or np.any(caps < 0):
                return None
            lam = np.zeros(n_rows)
            return _Relaxed(lam, 0.0, constant, np.zeros(0), *_reduced_best(table, objective, coefs, lam, 0.0))
        # Rows: the given rows, one per class of several options (their counts sum to at most its groups),
        # and for part e < K the layer-e option row (-sum of its counts <= -1); built column by column.
        n_classes = len(table.count)
        multi = np.bincount(table.owner, minlength=n_classes) > 1
        class_row = np.cumsum(multi) - 1 + n_rows
        at_row = n_rows + int(multi.sum())
        in_class = multi[table.owner]
        at = table.at if needs_at else np.zeros(n, dtype=bool)
        per_column = n_rows + in_class.astype(np.int64) + at.astype(np.int64)
        start = np.concatenate([[0], np.cumsum(per_column)]).astype(np.int32)
        index = np.empty(int(start[-1]), dtype=np.int32)
        value = np.empty(int(start[-1]))
        budget = start[:-1, None] + np.arange(n_rows)[None, :]
        index[budget.reshape(-1)] = np.tile(np.arange(n_rows, dtype=np.int32), n)
        value[budget.reshape(-1)] = coefs.reshape(-1)
        after = start[:-1] + n_rows
        index[after[in_class]] = class_row[table.owner[in_class]]
        value[after[in_class]] = 1.0
        last = after + in_class
        index[last[at]] = at_row
        value[last[at]] = -1.0
        upper = [caps, table.count[multi].astype(float)]
        if needs_at:
            upper.append(np.array([-1.0]))
        res = _solve_lp(-objective, table.count[table.owner].astype(float), np.concatenate(upper),
                        start, index, value)
        if res is None:
            return None
        if not res.optimal:
            lam = np.zeros(n_rows)
            return _Relaxed(lam, 0.0, math.inf, np.zeros(n), *_reduced_best(table, objective, coefs, lam, 0.0))
        duals = np.maximum(-res.row_dual, 0.0)
        lam = duals[:n_rows]
        mu = float(duals[-1]) if needs_at else 0.0
        reduced, best = _reduced_best(table, objective, coefs, lam, mu)
        bound = constant + float(caps @ lam) - mu + float(table.count @ np.maximum(best, 0.0))
        return _Relaxed(lam, mu, bound, res.x, reduced, best)


def _reduced_best(table: _Table, objective: np.ndarray, coefs: np.ndarray, lam: np.ndarray,
                  mu: float) -> tuple[np.ndarray, np.ndarray]:
    """Return each option's Lagrangian reduced objective at (lam, mu) and each class's best (or -inf)."""
    reduced = objective - coefs @ lam + mu * table.at
    best = np.full(len(table.count), -math.inf)
    np.maximum.at(best, table.owner, reduced)
    return reduced, best


@dataclass(frozen=True)
class _Relaxed:
    """A part's LP relaxation: row multipliers `lam`, the layer-e multiplier `mu`, the Lagrangian bound they
    prove, the LP's option counts `x`, and at (lam, mu) each option's reduced objective and each class's best."""

    lam: np.ndarray
    mu: float
    bound: float
    x: np.ndarray
    reduced: np.ndarray
    best: np.ndarray


@dataclass
class _Stage:
    """A solved part's CP-SAT model, kept for the second stage: its counts, their values and weights."""

    model: cp_model.CpModel
    variables: list[cp_model.IntVar]
    values: list[int]
    weights: list[int]
    objective: cp_model.LinearExprT
    optimum: int
    table: _Table
    layers: range


@dataclass
class _Solved:
    """Part e's optimum: selection, float objective value, and (when solved here) its model."""

    e: int
    selection: list[int]
    value: float
    stage: _Stage | None = None


@dataclass
class _PartModel:
    """Part e's CP-SAT model over its option counts, with the integer objective's constant and scale."""

    model: cp_model.CpModel
    variables: list[cp_model.IntVar]
    weights: list[int]
    objective: cp_model.LinearExprT
    constant: int
    scale: float
    layers: range

    @classmethod
    def build(cls, parts: _Parts, e: int, table: _Table, fixed: tuple[list[int], list[int]]) -> _PartModel | None:
        """Return part e's model (groups, rows, the layer-e option, the `fixed` most per option and fewest per
        class), or None when the part has no plan."""
        layers = range(e, parts.n_layers)
        model = cp_model.CpModel()
        counts = table.count[table.owner].tolist()
        upper, fewest = fixed
        variables = [model.new_int_var(0, n, "") for n in upper]
        members: list[list[cp_model.IntVar]] = [[] for _ in table.count]
        for z, c in zip(variables, table.owner.tolist(), strict=True):
            members[c].append(z)
        for zs, n, least in zip(members, table.count.tolist(), fewest, strict=True):
            if least > 0 and not zs:
                return None
            if len(zs) > 1:
                model.add(sum(zs) <= n)
            if least > 0:
                model.add(sum(zs) >= least)
        at = [z for z, flag in zip(variables, table.at.tolist(), strict=True) if flag]
        if e < parts.n_layers:
            if not at:
                return None
            model.add(sum(at) >= 1)
        elif parts.model.nonempty:
            if not variables:
                return None
            model.add(sum(variables) >= 1)
        weights = [*counts, *([1] * len(layers))]

        def coefficients(col: int) -> list[float]:
            return [*table.options[:, col].tolist(), *(parts.forms[col].y[k] for k in layers)]

        for col, row in enumerate(parts.model.rows, start=1):
            ints, cap = capacity_row(coefficients(col), row.cap, loose=row.loose, counts=weights)
            room = cap - sum(ints[len(variables):])
            if any(ints[: len(variables)]):
                model.add(cp_model.LinearExpr.weighted_sum(variables, ints[: len(variables)]) <= room)
            elif room < 0:
                return None
        ints, scale = objective_terms(coefficients(0), weights)
        objective = cp_model.LinearExpr.weighted_sum(variables, ints[: len(variables)])
        model.maximize(objective)
        return cls(model, variables, weights, objective, sum(ints[len(variables):]), scale, layers)

    def cut_off(self, best: _Solved | None) -> None:
        """Admit only plans at least as good as the incumbent `best` (within the integer rounding)."""
        if best is not None:
            slack = math.ceil(0.5 * (sum(self.weights) + 1)) + 1
            self.model.add(self.objective >= math.floor(best.value * self.scale) - self.constant - slack)


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
        """Take `hint` as the incumbent when it is a feasible plan of the model that beats the current one."""
        if self._feasible(hint):
            value = self.value_of(hint, 0)
            if self.best is None or value > self.best.value:
                self.best = _Solved(-1, sorted(hint), value)

    def _feasible(self, selection: list[int]) -> bool:
        """True when `selection` is a plan of the model: allowed, one per group, every row within its cap."""
        model = self.parts.model
        allowed = set(model.allowed)
        groups = [model.inst.problem.candidates[i].group for i in selection]
        named = [g for g in groups if g is not None]
        if not selection and model.nonempty or any(i not in allowed for i in selection) or len(set(named)) < len(named):
            return False
        if len(set(selection)) < len(selection):
            return False
        return all(self.value_of(selection, col) <= row.cap for col, row in enumerate(model.rows, start=1))

    def beats(self, bound: float, e: int) -> bool:
        """True when part e (bounded by `bound`) may hold a plan better than the incumbent."""
        if self.best is None:
            return True
        slack = _TIE_RTOL * max(1.0, abs(self.best.value))
        if bound > self.best.value + slack:
            return True
        return self.second and bound >= self.best.value - slack and self.parts.second_floors[e] < self.best_second

    def run(self) -> Outcome:
        """Return the search's outcome: optimal when every part is settled before the deadline."""
        open_parts = {e for e in range(self.parts.n_layers + 1) if not self.parts.empty[e]}
        while open_parts:
            e = max(open_parts, key=lambda k: (self.bound[k], -k))
            if not self.beats(self.bound[e], e):
                break
            if time.perf_counter() >= self.deadline:
                return self._unfinished(open_parts)
            table = self.parts.table(e)
            lp = self.parts.lp_bound(e, table)
            if lp is None:
                open_parts.discard(e)
                continue
            self.bound = np.minimum(self.bound, self.parts.bounds(lp.lam))
            self.bound[e] = min(self.bound[e], lp.bound)
            if not self.beats(self.bound[e], e):
                open_parts.discard(e)
                continue
            self._round(e, table, lp)
            if not self.beats(self.bound[e], e) or self._ties_settled(e, table):
                open_parts.discard(e)
                continue
            settled = self._solve_part(e, table, lp)
            if not settled:
                return self._unfinished(open_parts)
            open_parts.discard(e)
        return self._finish()

    def _round(self, e: int, table: _Table, lp: _Relaxed) -> None:
        """Offer the plan rounded from part e's LP solution: its counts rounded down, then options added by
        decreasing reduced objective while their class and the rows have room (the layer-e option first)."""
        parts = self.parts
        if not len(lp.x):
            return
        rows = slice(1, 1 + parts.n_rows)
        z = np.minimum(np.floor(np.maximum(lp.x, 0.0) + 1e-9), table.count[table.owner]).astype(np.int64)
        room = parts.caps - parts.suffix[e, rows] - z @ table.options[:, rows]
        if np.any(room < 0):
            return
        free = (table.count - np.bincount(table.owner, weights=z, minlength=len(table.count))).astype(np.int64).tolist()
        if min(free, default=0) < 0:
            return
        reduced = lp.reduced
        needs_at = e < parts.n_layers and not np.any(z[table.at] > 0)
        order = np.lexsort((-reduced, ~table.at)) if needs_at else np.argsort(-reduced, kind="stable")
        useful = (table.options[:, 0] > 0) | (table.at & needs_at)
        order = order[useful[order] & np.all(table.options[order][:, rows] >= 0, axis=1)]
        costs, owners, at = table.options[:, rows].tolist(), table.owner.tolist(), table.at.tolist()
        left, counts = room.tolist(), z.tolist()
        for k in order.tolist():
            cost, c = costs[k], owners[k]
            while free[c] > 0 and all(a <= b for a, b in zip(cost, left, strict=True)):
                counts[k] += 1
                free[c] -= 1
                left = [b - a for a, b in zip(cost, left, strict=True)]
                needs_at = needs_at and not at[k]
                if not any(a > 0 for a in cost):
                    break
        selection = _selection(table, counts)
        if not needs_at and self._feasible(selection):
            self._offer(_Solved(e, selection, self.value_of(selection, 0)))

    def _ties_settled(self, e: int, table: _Table) -> bool:
        """Settle part e, whose bound the incumbent meets, by the LP of its ties (its plans within the tie
        tolerance of the incumbent, least second form first): True when none is cheaper than the best tie, or
        the LP's solution is integral, a tie, and attains the LP's bound (then it is offered)."""
        if not self.second or self.best is None:
            return False
        slack = _TIE_RTOL * max(1.0, abs(self.best.value))
        if self.bound[e] > self.best.value + slack:
            return False
        lp = self.parts.tie_bound(e, table, self.best.value - slack)
        if lp is None:
            return True
        least = -lp.bound
        margin = _FIX_RTOL * max(1.0, abs(least))
        if least >= self.best_second - margin:
            return True
        counts = np.round(lp.x)
        if not len(counts) or np.max(np.abs(lp.x - counts)) > 1e-9:
            return False
        selection = _selection(table, counts.astype(np.int64).tolist())
        if not self._feasible(selection):
            return False
        found = _Solved(e, selection, self.value_of(selection, 0))
        if found.value < self.best.value - slack or self.value_of(selection, -1) > least + margin:
            return False
        self._offer(found)
        return True

    def _fixed(self, table: _Table, lp: _Relaxed) -> tuple[np.ndarray, np.ndarray]:
        """Return each option's most and each class's fewest chosen groups in any plan of part e that may
        match the incumbent (reduced-cost fixing: a plan loses its options' reduced-objective shortfall, and
        each unchosen group its class's best, from the Lagrangian bound at the LP duals)."""
        counts = table.count[table.owner]
        if self.best is None or not math.isfinite(lp.bound):
            return counts, np.zeros(len(table.count), dtype=np.int64)
        reduced, best = lp.reduced, np.maximum(lp.best, 0.0)
        value = self.best.value
        gap = max(lp.bound - value + _TIE_RTOL * max(1.0, abs(value)) + _FIX_RTOL * max(1.0, abs(lp.bound)), 0.0)
        loss = np.maximum(best[table.owner] - reduced, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            most = np.where(loss > 0, np.floor(gap / loss), np.inf)
            unchosen = np.where(best > 0, np.floor(gap / best), np.inf)
        upper = np.minimum(counts, most).astype(np.int64)
        fewest = np.maximum(table.count - np.minimum(table.count, unchosen), 0).astype(np.int64)
        return upper, fewest

    def _gap(self, lp: _Relaxed) -> float:
        """Return how far below the Lagrangian bound a plan of the part may fall and still match the incumbent."""
        value = self.best.value
        return max(lp.bound - value + _TIE_RTOL * max(1.0, abs(value)) + _FIX_RTOL * max(1.0, abs(lp.bound)), 0.0)

    def _dp_part(self, e: int, table: _Table, lp: _Relaxed, fewest: np.ndarray) -> bool | None:
        """Solve part e by the dynamic program of `_dp`; None when it keeps too many states even after a beam
        pass (the program keeping the states of least loss) has offered a better incumbent, which tightens it."""
        settled = self._dp(e, table, lp, fewest, beam=False)
        if settled is not None or self.best is None:
            return settled
        before = self.best.value
        self._dp(e, table, lp, fewest, beam=True)
        if self.best.value <= before:
            return None
        return self._dp(e, table, lp, self._fixed(table, lp)[1], beam=False)

    def _dp(self, e: int, table: _Table, lp: _Relaxed, fewest: np.ndarray, *, beam: bool) -> bool | None:
        """Solve part e by a dynamic program over its groups; None when it would keep too many states.

        A state is a partial plan: its objective, its row values (and second form), whether it has an option
        at layer e. A plan that may match the incumbent loses at most the gap below the Lagrangian bound at the
        LP duals, and every group's choice loses its share (its class's best reduced objective minus its own)
        of it, so a state past the gap is dropped; so is one no better in the objective and no smaller in every
        row and the second form than a kept one (it completes no better). What is left at the end holds
        every plan of the part that may match the incumbent, unless a better one; the best of them is offered.
        With `beam`, only the states of least loss are kept past the limit: the plan offered is then feasible
        but not proven best, and the return value means nothing.
        """
        if self.best is None or not math.isfinite(lp.bound):
            return None
        parts = self.parts
        n_rows = parts.n_rows
        gap = self._gap(lp)
        best = np.maximum(lp.best, 0.0)
        loss = best[table.owner] - lp.reduced
        # Columns of a state's vector: the rows, then the second form, then minus its layer-e (or any) flag.
        cols = list(range(1, 1 + n_rows)) + ([len(parts.forms) - 1] if self.second else [])
        needs = e < parts.n_layers or parts.model.nonempty
        flag = table.at if e < parts.n_layers else np.ones(len(table.owner), dtype=bool)
        caps = parts.caps - parts.suffix[e, 1: 1 + n_rows]
        margin = _FIX_RTOL * np.maximum(1.0, np.abs(caps))
        primary = int(np.argmax(lp.lam)) if n_rows else 0
        gains = np.zeros(1)
        vectors = np.zeros((1, len(cols) + 1))
        losses = np.zeros(1)
        steps: list[tuple[np.ndarray, np.ndarray]] = []
        tie = _TIE_RTOL * max(1.0, abs(self.best.value))
        # The choices within the gap, per class (a class's options are consecutive).
        n_classes = len(table.count)
        alive = np.flatnonzero(loss <= gap)
        bounds = np.searchsorted(table.owner[alive], np.arange(n_classes + 1))
        has = bounds[1:] > bounds[:-1]
        row_options = table.options[alive, 1: 1 + n_rows]
        highest, lowest = np.zeros((n_classes, n_rows)), np.zeros((n_classes, n_rows))
        if len(alive):
            highest[has] = np.maximum.reduceat(row_options, bounds[:-1][has], axis=0)
            lowest[has] = np.minimum(np.minimum.reduceat(row_options, bounds[:-1][has], axis=0), 0.0)
        # A class some of whose groups may take no option (cheaply enough to stay within the gap).
        skippable = (fewest < table.count) & (best <= gap)
        highest[has & skippable] = np.maximum(highest[has & skippable], 0.0)
        # A row that every surviving choice of every group keeps within its cap is left out of the dominance.
        most = table.count @ highest
        binding = np.append(most > caps - margin, [True] * (len(cols) + 1 - n_rows))
        # least[c]: the least the groups of classes c and after can add to each row (rows may fall).
        least = np.vstack([np.cumsum((table.count[:, None] * lowest)[::-1], axis=0)[::-1], np.zeros((1, n_rows))])
        vec_of = np.column_stack([table.options[:, cols], -flag.astype(float)])
        for c in range(n_classes):
            ks = alive[bounds[c]: bounds[c + 1]]
            n_groups = int(table.count[c])
            plain = or_none = (ks, table.options[ks, 0], vec_of[ks], loss[ks])
            if skippable[c]:
                or_none = (np.append(ks, -1), np.append(plain[1], 0.0),
                           np.vstack([plain[2], np.zeros(len(cols) + 1)]), np.append(plain[3], best[c]))
            room_last = caps + margin - least[c + 1]
            room_step = (least[c] - least[c + 1]) / max(n_groups, 1)
            for copy_ in range(n_groups):
                choice, g, v, l = or_none if skippable[c] and copy_ >= fewest[c] else plain
                if not len(choice):
                    return True
                new_loss = losses[:, None] + l[None, :]
                room = room_last - (n_groups - 1 - copy_) * room_step
                fits = np.all(vectors[:, None, :n_rows] + v[None, :, :n_rows] <= room, axis=2)
                kept = np.flatnonzero((new_loss <= gap) & fits)
                if not len(kept):
                    return True
                parent, which = np.divmod(kept, len(choice))
                picked = choice[which]
                new_gain = gains[parent] + g[which]
                new_vec = vectors[parent] + v[which]
                new_vec[:, -1] = np.maximum(new_vec[:, -1], -1.0)
                new_loss = new_loss.reshape(-1)[kept]
                if len(choice) == 1:
                    # One choice adds the same to every state: the dominance among them stays as it was.
                    gains, vectors, losses = new_gain, new_vec, new_loss
                    steps.append((parent, picked))
                    continue
                # Dominance, against the best objective among the states of no larger primary row before it.
                key = new_vec[:, primary] if n_rows else np.zeros(len(new_gain))
                order = np.lexsort((-new_gain, key))
                new_gain, new_vec, new_loss = new_gain[order], new_vec[order], new_loss[order]
                parent, picked = parent[order], picked[order]
                run = np.maximum.accumulate(new_gain)
                at_run = np.maximum.accumulate(np.where(new_gain >= run, np.arange(len(run)), 0))
                prev = at_run[np.maximum(np.arange(len(run)) - 1, 0)]
                # Past the tie tolerance, a better objective dominates whatever the second form.
                check = binding.copy()
                strictly = new_gain[prev] > new_gain + tie
                smaller = np.all((new_vec[prev] <= new_vec)[:, check], axis=1)
                if self.second:
                    check[n_rows] = False
                    smaller = np.where(strictly, np.all((new_vec[prev] <= new_vec)[:, check], axis=1), smaller)
                dominated = (new_gain[prev] >= new_gain) & smaller
                dominated[0] = False
                survive = ~dominated
                if np.count_nonzero(survive) > (_DP_BEAM if beam else _DP_MAX_STATES):
                    if not beam:
                        return None
                    kept = np.nonzero(survive)[0]
                    survive = kept[np.argpartition(new_loss[kept], _DP_BEAM)[:_DP_BEAM]]
                gains, vectors, losses = new_gain[survive], new_vec[survive], new_loss[survive]
                steps.append((parent[survive], picked[survive]))
        done = np.ones(len(gains), dtype=bool) if not needs else vectors[:, -1] < 0
        if not np.any(done):
            return True
        # The best states first (ties to the smaller second form), each checked exactly as a plan.
        second = vectors[:, n_rows] if self.second else np.zeros(len(gains))
        top = float(np.max(gains[done]))
        slack = _TIE_RTOL * max(1.0, abs(top + parts.suffix[e, 0]))
        candidates = np.nonzero(done)[0]
        tied = gains[candidates] >= top - slack
        order = np.concatenate([candidates[tied][np.argsort(second[candidates[tied]], kind="stable")],
                                candidates[~tied][np.argsort(-gains[candidates[~tied]], kind="stable")]])
        for state in order[:8].tolist():
            counts = [0] * len(table.owner)
            for parent, picked in reversed(steps):
                k = int(picked[state])
                if k >= 0:
                    counts[k] += 1
                state = int(parent[state])
            selection = _selection(table, counts)
            if self._feasible(selection):
                self._offer(_Solved(e, selection, self.value_of(selection, 0)))
                return True
        return None

    def _solve_part(self, e: int, table: _Table, lp: _Relaxed) -> bool:
        """Solve part e with a cutoff at the incumbent and reduced-cost fixing; False when the deadline stopped it.

        The dynamic program steps once per group, CP-SAT has a count per option of a class: the program goes first
        when most classes are single groups (distinct gains), CP-SAT alone where interchangeable groups make its
        counts the smaller model (a prior's tied layers, 7 classes of 32 groups, took the program 20 ms a part;
        a layer profile's 97 classes of 2.3 groups 13 ms, and CP-SAT a few).
        """
        upper, fewest = self._fixed(table, lp)
        if table.count.sum() <= _DP_GROUPS_PER_CLASS * len(table.count):
            settled = self._dp_part(e, table, lp, fewest)
            if settled is not None:
                return settled
            upper, fewest = self._fixed(table, lp)
        free = upper > 0
        table = table.restricted(free)
        part = _PartModel.build(self.parts, e, table, (upper[free].tolist(), fewest.tolist()))
        if part is None:
            return True
        part.cut_off(self.best)
        solver = _new_solver(self.deadline - time.perf_counter())
        status = solver.solve(part.model)
        if status == cp_model.INFEASIBLE:
            return True
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            if status == cp_model.MODEL_INVALID:
                raise RuntimeError(f"CP-SAT rejected the model: {solver.status_name(status)}")
            return False
        values = [solver.value(z) for z in part.variables]
        selection = _selection(table, values)
        stage = _Stage(part.model, part.variables, values, part.weights, part.objective,
                       solver.value(part.objective), table, part.layers)
        self._offer(_Solved(e, selection, self.value_of(selection, 0), stage))
        if status == cp_model.FEASIBLE:
            self.bound[e] = min(self.bound[e], (solver.best_objective_bound + part.constant) / part.scale)
            return False
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
        if self.best is None or self.best.e == _FLOOR:
            return Outcome("unknown", [], None, bound)
        return Outcome("feasible", self.best.selection, self.best.value, max(bound, self.best.value))

    def _finish(self) -> Outcome:
        """Return the proven optimum; with a second form, the tied plan that minimizes it."""
        if self.best is None:
            return Outcome("infeasible", [], None, None)
        if self.best.e == _FLOOR:
            return Outcome("below_floor", [], None, self.best.value)
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
        stage = found.stage
        assert stage is not None
        col = len(self.parts.forms) - 1
        coefs = [*stage.table.options[:, col].tolist(), *(self.parts.forms[col].y[k] for k in stage.layers)]
        ints, _ = objective_terms(coefs, stage.weights)
        model, variables = stage.model, stage.variables
        model.add(stage.objective >= stage.optimum)
        model.minimize(cp_model.LinearExpr.weighted_sum(variables, ints[: len(variables)]))
        model.clear_hints()
        for z, v in zip(variables, stage.values, strict=True):
            model.add_hint(z, v)
        solver = _new_solver(max(self.deadline - time.perf_counter(), 0.05))
        if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return found
        selection = _selection(stage.table, [solver.value(z) for z in variables])
        return _Solved(found.e, selection, self.value_of(selection, 0))


def _selection(table: _Table, values: list[int]) -> list[int]:
    """Return the candidates of a part's solution: each class's counts dealt to its groups in order."""
    out: list[int] = []
    dealt = [0] * len(table.count)
    for c, j, v in zip(table.owner.tolist(), table.slot.tolist(), values, strict=True):
        groups = table.groups[c]
        for g in range(dealt[c], dealt[c] + v):
            out.append(groups[g][j])
        dealt[c] += v
    return sorted(out)


@dataclass(frozen=True)
class _LpResult:
    """An LP solved by HiGHS: proven optimal or not, the row duals and the column values."""

    optimal: bool
    row_dual: np.ndarray
    x: np.ndarray


def _solve_lp(cost: np.ndarray, col_upper: np.ndarray, row_upper: np.ndarray, start: np.ndarray,
              index: np.ndarray, value: np.ndarray) -> _LpResult | None:
    """Minimize cost . x over 0 <= x <= col_upper, A x <= row_upper (A column-wise); None when infeasible.

    Presolve is off: on these LPs (a few rows, one column per option) it took a third of HiGHS's time.
    """
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(cost), len(row_upper)
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, np.zeros(len(cost)), col_upper
    lp.row_lower_, lp.row_upper_ = np.full(len(row_upper), -highspy.kHighsInf), row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = start, index, value
    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return None
    solution = h.getSolution()
    return _LpResult(status == highspy.HighsModelStatus.kOptimal, np.asarray(solution.row_dual),
                     np.asarray(solution.col_value))


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
