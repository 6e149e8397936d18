"""`apply_plan`: attach exactly a plan's adapters to a model and make only their parameters trainable."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from profiler.candidates import CandidateRef, SiteIndex, parse_id
from profiler.errors import ProfileError
from profiler.methods.base import Attachment, freeze
from profiler.methods.registry import attach


@dataclass
class Applied:
    """The attachments of a plan, by candidate id; `detach()` restores the model."""

    model: nn.Module
    attachments: dict[str, Attachment] = field(default_factory=dict)
    refs: dict[str, CandidateRef] = field(default_factory=dict)

    def parameters(self) -> list[nn.Parameter]:
        """All trainable parameters the plan added or unfroze."""
        return [p for a in self.attachments.values() for p in a.parameters()]

    def by_method(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters grouped by method (for per-method learning rates)."""
        groups: dict[str, list[nn.Parameter]] = {}
        for cid, att in self.attachments.items():
            groups.setdefault(self.refs[cid].method, []).extend(att.parameters())
        return groups

    def num_parameters(self) -> int:
        """Trainable scalars the plan added (the plan's `params`)."""
        return sum(a.num_parameters() for a in self.attachments.values())

    def detach(self) -> None:
        """Remove every attachment (in reverse order)."""
        for att in reversed(list(self.attachments.values())):
            att.detach()
        self.attachments.clear()


def selected_ids(plan: Any) -> list[str]:
    """Candidate ids of a solver `Plan` (or anything with `.selected`, or a list of ids)."""
    return list(plan.selected) if hasattr(plan, "selected") else list(plan)


def apply_plan(model: nn.Module, plan: Any, inputs: dict[str, Any] | None = None) -> Applied:
    """Freeze `model`, attach every selected candidate, and return the attachments.

    `plan` is a solver `Plan` (its `selected` ids) or an iterable of ids; `inputs` are example
    keyword inputs for one forward pass that locates the sites (token ids by default). Afterwards
    the model's trainable parameters are exactly the plan's. Two candidates of one site and method
    (two ranks of one LoRA group) are an error, as the solver never picks both.
    """
    ids: Iterable[str] = selected_ids(plan)
    freeze(model)
    refs = [parse_id(cid) for cid in ids]
    seen: dict[tuple[str, str], str] = {}
    for ref in refs:
        key = (ref.site, ref.method)
        if key in seen:
            raise ProfileError(f"plan selects both {seen[key]!r} and {ref.id!r} on one site")
        seen[key] = ref.id
    index = SiteIndex(model, inputs)
    applied = Applied(model)
    try:
        for ref in refs:
            applied.attachments[ref.id] = attach(model, index.site_for(ref), ref.method, ref.setting)
            applied.refs[ref.id] = ref
    except Exception:
        applied.detach()
        raise
    return applied
