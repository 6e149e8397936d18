"""A problem prepared for solving: flat float arrays, layer reach, exact plan totals."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from solver.problem import Problem

# Relative slack allowed when checking a float total against its cap; it only
# absorbs the last-bit rounding of summation, never a real overrun.
_CAP_RTOL = 1e-12


@dataclass(frozen=True)
class Totals:
    """Exact totals of one selection: float sums over candidates and reached layers."""

    gain: float
    params: int
    flops: float
    latency_ms: float
    memory_bytes: float


@dataclass
class Instance:
    """Problem data as parallel lists; `layer_pos[i]` is the earliest layer position candidate i pays, `saved[i]`
    the saved input it needs (an index into `saved_memory`)."""

    problem: Problem
    ids: list[str]
    gain: list[float]
    params: list[int]
    flops: list[float]
    latency: list[float]
    memory: list[float]
    groups: dict[str, list[int]]
    layer_pos: list[int | None]
    layer_index: list[int]
    layer_flops: list[float]
    layer_memory: list[float]
    saved: list[int | None]
    saved_memory: list[float]

    @classmethod
    def from_problem(cls, problem: Problem) -> Instance:
        """Return the flat form of `problem`; layers are sorted by index."""
        layers = sorted(problem.layers, key=lambda layer: layer.index)
        index = [layer.index for layer in layers]
        groups: dict[str, list[int]] = {}
        layer_pos: list[int | None] = []
        for i, c in enumerate(problem.candidates):
            if c.group is not None:
                groups.setdefault(c.group, []).append(i)
            layer_pos.append(
                bisect.bisect_left(index, c.layer) if c.layer is not None and index else None
            )
        cands = problem.candidates
        inputs = {i.key: k for k, i in enumerate(problem.saved_inputs)}
        return cls(
            problem=problem,
            ids=[c.id for c in cands],
            gain=[c.gain for c in cands],
            params=[c.params for c in cands],
            flops=[c.flops for c in cands],
            latency=[c.latency_ms for c in cands],
            memory=[c.memory_bytes for c in cands],
            groups=groups,
            layer_pos=layer_pos,
            layer_index=index,
            layer_flops=[layer.backward_flops for layer in layers],
            layer_memory=[layer.memory_bytes for layer in layers],
            saved=[None if c.saved_input is None else inputs[c.saved_input] for c in cands],
            saved_memory=[i.memory_bytes for i in problem.saved_inputs],
        )

    @property
    def n(self) -> int:
        """Number of candidates."""
        return len(self.ids)

    def earliest_layer(self, selection: list[int]) -> int | None:
        """Return the lowest layer position any selected candidate reaches, or None."""
        positions = [self.layer_pos[i] for i in selection if self.layer_pos[i] is not None]
        return min(positions) if positions else None

    def totals(self, selection: list[int]) -> Totals:
        """Return the exact totals of `selection` (candidate positions), layers and saved inputs paid once."""
        first = self.earliest_layer(selection)
        inputs = {self.saved[i] for i in selection} - {None}
        reached = range(first, len(self.layer_index)) if first is not None else range(0)
        return Totals(
            gain=math.fsum(self.gain[i] for i in selection),
            params=sum(self.params[i] for i in selection),
            flops=math.fsum([*(self.flops[i] for i in selection), *(self.layer_flops[k] for k in reached)]),
            latency_ms=math.fsum(self.latency[i] for i in selection),
            memory_bytes=math.fsum(
                [*(self.memory[i] for i in selection), *(self.layer_memory[k] for k in reached),
                 *(self.saved_memory[k] for k in inputs)]
            ),
        )

    @cached_property
    def caps(self) -> list[tuple[str, float]]:
        """Return (axis, cap with its rounding slack) for every capped budget axis (a `Totals` field name):
        params and flops, latency and memory when given."""
        b = self.problem.budget
        axes = ("params", "flops", "latency_ms", "memory_bytes")
        return [(axis, getattr(b, axis) * (1 + _CAP_RTOL)) for axis in axes if getattr(b, axis) is not None]

    def fits(self, t: Totals, *, min_gain: bool = True) -> bool:
        """True when totals `t` respect every budget cap (and min_gain when asked)."""
        if any(getattr(t, axis) > cap for axis, cap in self.caps):
            return False
        return not min_gain or t.gain >= self.problem.min_gain * (1 - _CAP_RTOL)

    def fractions(self, t: Totals) -> tuple[float, float]:
        """Return (p, c): the plan's share of the params and flops budgets."""
        b = self.problem.budget
        return t.params / b.params, t.flops / b.flops

    def log_fractions(self, t: Totals) -> tuple[float, float]:
        """Return (ln p, ln c) of a non-empty plan, computed without underflow."""
        b = self.problem.budget
        return math.log(t.params) - math.log(b.params), math.log(t.flops) - math.log(b.flops)

    def efficiency(self, t: Totals) -> float | None:
        """Return M = gain / sqrt(p*c), or None for an empty plan (in log space: p*c may underflow)."""
        if t.params == 0:
            return None
        log_p, log_c = self.log_fractions(t)
        return t.gain * math.exp(-0.5 * (log_p + log_c))

    def ratio(self, t: Totals) -> float:
        """Return u = ln(c/p)/2 of a non-empty plan."""
        log_p, log_c = self.log_fractions(t)
        return 0.5 * (log_c - log_p)

    @cached_property
    def layer_suffixes(self) -> tuple[list[float], list[float]]:
        """Return (flops, memory) paid by a plan whose earliest layer position is k, for k = 0..K (K: none)."""
        n_layers = len(self.layer_index)
        suffix_flops, suffix_memory = [0.0] * (n_layers + 1), [0.0] * (n_layers + 1)
        for k in range(n_layers - 1, -1, -1):
            suffix_flops[k] = suffix_flops[k + 1] + self.layer_flops[k]
            suffix_memory[k] = suffix_memory[k + 1] + self.layer_memory[k]
        return suffix_flops, suffix_memory

    def extended(self, t: Totals, first: int, inputs: frozenset[int], i: int) -> tuple[Totals, int, frozenset[int]]:
        """Return the totals of a selection with totals `t`, earliest layer position `first` (K: none) and saved
        inputs `inputs`, once candidate i joins it, with its new earliest position and inputs (float sums in
        order, so close to, not always equal to, `totals`)."""
        suffix_flops, suffix_memory = self.layer_suffixes
        k = len(self.layer_index) if self.layer_pos[i] is None else self.layer_pos[i]
        reach = min(first, k)
        saved = self.saved[i]
        new_input = saved is not None and saved not in inputs
        return Totals(
            gain=t.gain + self.gain[i], params=t.params + self.params[i],
            flops=t.flops + self.flops[i] + suffix_flops[reach] - suffix_flops[first],
            latency_ms=t.latency_ms + self.latency[i],
            memory_bytes=t.memory_bytes + self.memory[i] + suffix_memory[reach] - suffix_memory[first]
            + (self.saved_memory[saved] if new_input else 0.0),
        ), reach, inputs | {saved} if new_input else inputs

    @cached_property
    def single_columns(self) -> dict[str, np.ndarray]:
        """Return each candidate's totals when chosen alone (its own costs, the layers it reaches, its saved
        input), an array per `Totals` field; params as Python integers (an object array), compared exactly."""
        n_layers = len(self.layer_index)
        suffix_flops, suffix_memory = (np.asarray(v) for v in self.layer_suffixes)
        reach = np.array([n_layers if p is None else p for p in self.layer_pos], dtype=np.int64)
        saved = np.array([0.0 if k is None else self.saved_memory[k] for k in self.saved])
        return {
            "gain": np.asarray(self.gain, dtype=float),
            "params": np.array(self.params, dtype=object),
            "flops": np.asarray(self.flops, dtype=float) + suffix_flops[reach],
            "latency_ms": np.asarray(self.latency, dtype=float),
            "memory_bytes": np.asarray(self.memory, dtype=float) + suffix_memory[reach] + saved,
        }

    @cached_property
    def singles(self) -> list[Totals]:
        """Return each candidate's totals when chosen alone (`single_columns` as one `Totals` per candidate)."""
        c = {name: column.tolist() for name, column in self.single_columns.items()}
        rows = zip(c["gain"], c["params"], c["flops"], c["latency_ms"], c["memory_bytes"], strict=True)
        return [Totals(*row) for row in rows]

    def fitting_alone(self) -> list[int]:
        """Return the positions of candidates that fit the caps alone (with their layer costs): `fits` of each
        of `singles`, taken as arrays."""
        ok = np.ones(self.n, dtype=bool)
        for axis, cap in self.caps:
            ok &= (self.single_columns[axis] <= cap).astype(bool)
        return np.flatnonzero(ok).tolist()
