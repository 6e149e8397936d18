"""Exact maximization of M = gain / sqrt(p*c) by slicing on the cost ratio.

Write u = ln(c/p) / 2, so sqrt(p*c) = p * e**u. On a slice u1 <= u <= u2 the
concave sqrt(p*c) lies above its chord L = alpha*p + beta*c (equal at both
ends) and below cosh((u2-u1)/2) * L. So on a slice, M <= gain / L, and
"some plan here has gain/L > theta" is one *linear* knapsack:
max gain - theta*L > 0. Dinkelbach iterations on that knapsack give the
slice's exact max of gain/L (an upper bound of M there); best-first
splitting on u shrinks the slices until every bound is within `rtol` of the
best plan found. A last stage breaks ties towards the larger gain.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

from solver.instance import Instance, Totals
from solver.knapsack import Form, KnapsackModel, gain_form
from solver.problem import SolveTimeout

# Default relative tolerance of the efficiency optimum; plans within it count as tied.
RTOL = 1e-6
_MAX_DINKELBACH_STEPS = 8
_MIN_SLICE_WIDTH = 1e-12
_MAX_TIED_RATIOS = 16
# A slice is split at its maximizer's ratio only if that lies this share of its width inside.
_SPLIT_MARGIN = 0.05


@dataclass
class _Found:
    """A feasible plan found during the search."""

    selection: list[int]
    value: float
    gain: float
    ratio: float


@dataclass
class EfficiencyResult:
    """Selection, status (optimal/feasible/infeasible), and the proven upper bound on M."""

    selection: list[int]
    status: str
    bound: float | None


class _Search:
    def __init__(self, inst: Instance, allowed: list[int], deadline: float, rtol: float):
        self.inst = inst
        self.rtol = rtol
        self.deadline = deadline
        b = inst.problem.budget
        zeros = [0.0] * len(inst.layer_index)
        self.p_form = Form([v / b.params for v in inst.params], zeros)
        self.c_form = Form([v / b.flops for v in inst.flops], [v / b.flops for v in inst.layer_flops])
        self.g_form = gain_form(inst)
        self.base = KnapsackModel(inst, allowed, nonempty=True)
        if inst.problem.min_gain > 0:
            self.base.add_at_least(self.g_form, inst.problem.min_gain, loose=True)
        self.best: _Found | None = None
        self.tied: dict[float, _Found] = {}

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def ratio(self, selection: list[int]) -> float:
        """Return u = ln(c/p)/2 of a selection."""
        return self.inst.ratio(self.inst.totals(selection))

    def offer(self, selection: list[int], totals: Totals | None = None) -> None:
        """Record `selection` if feasible: the incumbent when best, a tie when within rtol."""
        totals = totals or self.inst.totals(selection)
        if not selection or not self.inst.fits(totals):
            return
        value = self.inst.efficiency(totals)
        assert value is not None
        found = _Found(selection, value, totals.gain, self.inst.ratio(totals))
        if self.best is None or value > self.best.value:
            self.best = found
            floor = value * (1 - self.rtol)
            self.tied = {u: f for u, f in self.tied.items() if f.value >= floor}
        if value >= self.best.value * (1 - self.rtol):
            key = round(found.ratio, 9)
            if key not in self.tied or found.gain > self.tied[key].gain:
                self.tied[key] = found

    def threshold(self) -> float:
        return self.best.value * (1 + self.rtol) if self.best else 0.0

    def slice_bound(self, u1: float, u2: float) -> tuple[float, float] | None:
        """Return (max of gain/L over plans with ratio in [u1, u2], where to split); None: out of time.

        The bound is <= threshold() when no plan of the slice beats the incumbent.
        The split point is the ratio of the last maximizer when it lies well inside
        the slice (there chord and sqrt agree, so neither half's bound is inflated
        by that plan), else the middle.
        """
        e1, e2 = math.exp(u1), math.exp(u2)
        chord = self.p_form.scaled(e1 * e2 / (e1 + e2)).plus(self.c_form.scaled(1 / (e1 + e2)))
        model = self.base.clone()
        model.add_at_least(self.c_form.plus(self.p_form.scaled(-e1 * e1)), 0.0, loose=True)
        model.add_at_most(self.c_form.plus(self.p_form.scaled(-e2 * e2)), 0.0, loose=True)
        theta = self.threshold()
        hint = self.best.selection if self.best else None
        split = 0.5 * (u1 + u2)
        margin = _SPLIT_MARGIN * (u2 - u1)
        for _ in range(_MAX_DINKELBACH_STEPS):
            if self.remaining() <= 0:
                return None
            objective = self.g_form.plus(chord.scaled(-theta))
            out = model.maximize(objective, time_limit_s=self.remaining(), hint=hint, floor=0.0)
            if out.status in ("infeasible", "below_floor"):
                return theta, split
            if out.status != "optimal":
                return None
            if out.value <= 0 or not out.selection:
                return theta, split
            self.offer(out.selection)
            u = self.ratio(out.selection)
            if u1 + margin < u < u2 - margin:
                split = u
            first = self.inst.earliest_layer(out.selection)
            paid = list(range(first, len(self.inst.layer_index))) if first is not None else []
            ratio = self.g_form.value(out.selection, paid) / chord.value(out.selection, paid)
            if ratio <= theta:
                return max(theta, self.threshold()), split
            theta, hint = ratio, out.selection
        return math.inf, split

    def offer_greedy(self, allowed: list[int]) -> None:
        """Offer a greedy plan: candidates by their own M, each kept if it raises M or min_gain is unmet."""
        inst = self.inst
        order = sorted(allowed, key=lambda i: -(inst.efficiency(inst.singles[i]) or 0.0))
        chosen: list[int] = []
        groups: set[str] = set()
        current, first, inputs = inst.totals([]), len(inst.layer_index), frozenset[int]()
        for i in order:
            group = inst.problem.candidates[i].group
            if group is not None and group in groups:
                continue
            trial, reach, with_input = inst.extended(current, first, inputs, i)
            if not inst.fits(trial, min_gain=False):
                continue
            if current.gain >= inst.problem.min_gain and chosen:
                if (inst.efficiency(trial) or 0.0) <= (inst.efficiency(current) or 0.0):
                    continue
            chosen.append(i)
            current, first, inputs = trial, reach, with_input
            if group is not None:
                groups.add(group)
        self.offer(chosen)

    def initial_range(self, allowed: list[int]) -> tuple[float, float]:
        """Return bounds on u: c >= the cheapest single plan's c, p >= the smallest p, both <= 1."""
        singles = [self.inst.log_fractions(self.inst.singles[i]) for i in allowed]
        log_p_min = min(log_p for log_p, _ in singles)
        log_c_min = min(log_c for _, log_c in singles)
        return 0.5 * log_c_min - 1e-9, -0.5 * log_p_min + 1e-9

    def crude_bound(self, allowed: list[int]) -> float:
        """Return a finite upper bound of M: every group's best gain summed, over the least p and c of any plan."""
        inst = self.inst
        best: dict[object, float] = {}
        for i in allowed:
            key = inst.problem.candidates[i].group or i
            best[key] = max(best.get(key, 0.0), inst.gain[i])
        singles = [inst.log_fractions(inst.singles[i]) for i in allowed]
        log_p_min = min(log_p for log_p, _ in singles)
        log_c_min = min(log_c for _, log_c in singles)
        return math.fsum(best.values()) * math.exp(-0.5 * (log_p_min + log_c_min))

    def polish(self) -> list[int]:
        """Return the largest-gain plan with M within rtol of the best, near each tied ratio.

        Near ratio u*, sqrt(p*c) <= T = (e**u* * p + e**-u* * c) / 2, so
        gain >= M*(1-rtol) * T is a linear row that admits only near-optimal plans.
        """
        assert self.best is not None
        floor = self.best.value * (1 - self.rtol)
        chosen = max(self.tied.values(), key=lambda f: f.gain)
        for found in sorted(self.tied.values(), key=lambda f: f.ratio)[:_MAX_TIED_RATIOS]:
            if self.remaining() <= 0:
                break
            u = found.ratio
            tangent = self.p_form.scaled(math.exp(u) / 2).plus(self.c_form.scaled(math.exp(-u) / 2))
            model = self.base.clone()
            model.add_at_least(self.g_form.plus(tangent.scaled(-floor)), 0.0)
            out = model.maximize(
                self.g_form,
                time_limit_s=self.remaining(),
                hint=found.selection,
                then_minimize=self.p_form.plus(self.c_form),
            )
            if out.status != "optimal":
                continue
            totals = self.inst.totals(out.selection)
            value = self.inst.efficiency(totals)
            if self.inst.fits(totals) and value is not None and value >= floor and totals.gain > chosen.gain:
                chosen = _Found(out.selection, value, totals.gain, u)
        return chosen.selection

    def single_is_optimal(self, allowed: list[int]) -> bool:
        """True when the incumbent is provably optimal without a search.

        With additive costs (no layer backward FLOPs), M of a union is at most
        the best M of its parts (Cauchy-Schwarz); so when the best single
        candidate meets min_gain on its own, it is optimal.
        """
        inst = self.inst
        reached = {
            k
            for i in allowed
            if inst.layer_pos[i] is not None
            for k in range(inst.layer_pos[i], len(inst.layer_index))
        }
        if any(inst.layer_flops[k] > 0 for k in reached):
            return False
        best_any = max(inst.efficiency(inst.singles[i]) or 0.0 for i in allowed)
        return self.best is not None and self.best.value >= best_any


def maximize_efficiency(
    inst: Instance, allowed: list[int], deadline: float, rtol: float = RTOL
) -> EfficiencyResult:
    """Return the non-empty plan of maximal M (ties to larger gain) among `allowed` candidates.

    Optimal means proven within `rtol` relative: no plan has M above the
    returned bound, and the plan's M is within `rtol` of it.

    Raises SolveTimeout when the deadline passes before any plan is found.
    """
    if not allowed:
        return EfficiencyResult([], "infeasible", None)
    search = _Search(inst, allowed, deadline, rtol)
    for i in allowed:
        search.offer([i], inst.singles[i])
    search.offer_greedy(allowed)
    if search.best is None:
        out = search.base.maximize(search.g_form, time_limit_s=search.remaining())
        if out.status == "infeasible":
            return EfficiencyResult([], "infeasible", None)
        search.offer(out.selection)
        if search.best is None:
            raise SolveTimeout("no plan reaching min_gain was found within the time limit")
    if search.single_is_optimal(allowed):
        return EfficiencyResult(search.polish(), "optimal", search.best.value)

    u_lo, u_hi = search.initial_range(allowed)
    heap: list[tuple[float, float, float]] = [(-search.crude_bound(allowed), u_lo, u_hi)]
    while heap:
        neg_bound, u1, u2 = heap[0]
        if -neg_bound <= search.threshold():
            break
        heapq.heappop(heap)
        result = search.slice_bound(u1, u2)
        if result is None:
            heapq.heappush(heap, (neg_bound, u1, u2))
            return EfficiencyResult(search.best.selection, "feasible", -heap[0][0])
        bound, split = min(result[0], -neg_bound), result[1]
        if bound <= search.threshold() or u2 - u1 < _MIN_SLICE_WIDTH:
            continue
        heapq.heappush(heap, (-bound, u1, split))
        heapq.heappush(heap, (-bound, split, u2))
    return EfficiencyResult(search.polish(), "optimal", search.best.value)
