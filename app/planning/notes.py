"""What a plan's reader should know that its numbers do not say: why it is empty, why every rank is one."""

from __future__ import annotations

from collections import defaultdict

from solver import Plan, Problem


def plan_notes(problem: Problem, plan: Plan, sources: dict[str, int]) -> list[str]:
    """Notes on `plan`: empty because no candidate has a positive gain (naming where the gains came from),
    and, per method, a single setting taken because the gains do not tell its settings apart."""
    notes = []
    origin = ", ".join(f"{name} ({n})" for name, n in sources.items()) or "the problem"
    if not plan.selected and not any(c.gain > 0 for c in problem.candidates):
        notes.append(f"the plan is empty: no candidate has a positive gain (gains from {origin}); "
                     "estimate them (peft-planner gains) or give them by method or candidate")
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    settings: dict[str, set[str]] = defaultdict(set)
    for c in problem.candidates:
        if c.group is not None and c.config:
            groups[c.method][c.group].append(c.gain)
            settings[c.method].add(str(next(iter(c.config.values()))))
    selected = set(plan.selected)
    chosen = [c for c in problem.candidates if c.id in selected]
    for method, by_group in groups.items():
        if len(settings[method]) < 2 or any(len(set(gains)) > 1 for gains in by_group.values()):
            continue
        used = {str(next(iter(c.config.values()))) for c in chosen if c.method == method and c.config}
        if len(used) == 1:
            notes.append(f"every {method} candidate takes setting {used.pop()}: the gains are the same at every "
                         f"setting of a site ({', '.join(sorted(settings[method], key=_number))}), so the cheapest "
                         "wins; give gains by candidate id, or estimate them (peft-planner gains)")
    return notes


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")
