"""Saved inputs paid once, folded into the knapsack: groups that share an input become one group of combinations.

A saved input (the activation q, k and v all read) costs memory once when any
candidate that saves it is chosen. That is no knapsack term, so under a memory
cap the groups ("units": a named group, or an ungrouped candidate alone) that
share inputs are joined into one unit whose options are every non-empty
combination of one option per member unit, each carrying the sum of its
members' costs and its distinct inputs' memory once. An input saved within
one unit only (at most one of its candidates is chosen) is simply added to
each of them. The folded problem has no saved inputs and the same plans, so
the exact solver runs on it unchanged; its plans map back to the candidates.
Without a memory cap the inputs change no choice and nothing is folded.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

from solver.instance import Instance
from solver.problem import Candidate, Problem

# Most combinations one joined unit may have: beyond, the problem is refused rather than solved slowly.
MAX_COMBINATIONS = 20_000


@dataclass(frozen=True)
class Folded:
    """A problem without saved inputs, the problem it was folded from, and per candidate position the
    original candidates it stands for."""

    problem: Problem
    source: Problem
    members: list[tuple[int, ...]]

    @cached_property
    def instance(self) -> Instance:
        """Return the folded problem prepared for solving."""
        return Instance.from_problem(self.problem)

    @cached_property
    def source_instance(self) -> Instance:
        """Return the source problem prepared for solving (the folded one's, when nothing was folded)."""
        return self.instance if self.problem is self.source else Instance.from_problem(self.source)

    def unfold(self, selection: list[int]) -> list[int]:
        """Return the source candidate positions of a selection of the folded problem's candidates."""
        return sorted(i for j in selection for i in self.members[j])


def _units(problem: Problem) -> list[list[int]]:
    """Return the candidates as units: one per named group, one per ungrouped candidate (positions)."""
    named: dict[str, list[int]] = {}
    units: list[list[int]] = []
    for i, c in enumerate(problem.candidates):
        if c.group is None:
            units.append([i])
        else:
            if c.group not in named:
                named[c.group] = []
                units.append(named[c.group])
            named[c.group].append(i)
    return units


def _joined(problem: Problem, units: list[list[int]]) -> list[list[int]]:
    """Return the units as components: units that share a saved input in one component (unit positions)."""
    parent = list(range(len(units)))

    def root(u: int) -> int:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    first: dict[str, int] = {}
    for u, members in enumerate(units):
        for i in members:
            key = problem.candidates[i].saved_input
            if key is not None:
                parent[root(u)] = root(first.setdefault(key, u))
    components: dict[int, list[int]] = {}
    for u in range(len(units)):
        components.setdefault(root(u), []).append(u)
    return list(components.values())


def fold(problem: Problem, *, memory_decides: bool = False) -> Folded:
    """Return `problem` with its saved inputs folded into joined units; itself when memory decides nothing
    (no memory cap, and not `memory_decides`, as for a frontier along memory).

    Raises ValueError when a joined unit would have more than MAX_COMBINATIONS options.
    """
    n = len(problem.candidates)
    decides = memory_decides or problem.budget.memory_bytes is not None
    if not decides or not any(c.saved_input for c in problem.candidates):
        return Folded(problem, problem, [(i,) for i in range(n)])
    inputs = {i.key: i.memory_bytes for i in problem.saved_inputs}
    cands = problem.candidates
    units = _units(problem)
    out: list[Candidate] = []
    members: list[tuple[int, ...]] = []
    for k, component in enumerate(_joined(problem, units)):
        if len(component) == 1:
            for i in units[component[0]]:
                c = cands[i]
                extra = 0.0 if c.saved_input is None else inputs[c.saved_input]
                out.append(c.model_copy(update={"memory_bytes": c.memory_bytes + extra, "saved_input": None}))
                members.append((i,))
            continue
        choices = [[None, *units[u]] for u in component]
        size = math.prod(len(ch) for ch in choices) - 1
        if size > MAX_COMBINATIONS:
            key = next(cands[i].saved_input for u in component for i in units[u] if cands[i].saved_input)
            raise ValueError(
                f"saved_inputs: {len(component)} groups share saved input {key!r} (directly or through others), "
                f"making {size:,} combinations; the solver takes at most {MAX_COMBINATIONS:,}")
        group = f"\x00saved:{k}"
        for combo in itertools.product(*choices):
            chosen = tuple(i for i in combo if i is not None)
            if chosen:
                out.append(_combined(problem, chosen, inputs, group, len(out)))
                members.append(chosen)
    return Folded(problem.model_copy(update={"candidates": out, "saved_inputs": []}), problem, members)


def _combined(problem: Problem, chosen: tuple[int, ...], inputs: dict[str, float], group: str, j: int) -> Candidate:
    """Return the candidate standing for `chosen` together: summed costs, each distinct input's memory once."""
    cs = [problem.candidates[i] for i in chosen]
    layers = [c.layer for c in cs if c.layer is not None]
    keys = {c.saved_input for c in cs} - {None}
    return Candidate.model_construct(
        id=f"\x00combined:{j}", method="+".join(c.method for c in cs), group=group,
        layer=min(layers) if layers else None,
        gain=math.fsum(c.gain for c in cs), params=sum(c.params for c in cs),
        flops=math.fsum(c.flops for c in cs), latency_ms=math.fsum(c.latency_ms for c in cs),
        memory_bytes=math.fsum([*(c.memory_bytes for c in cs), *(inputs[key] for key in keys)]),
        site=None, config=None, saved_input=None,
    )
