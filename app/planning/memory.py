"""A plan's total training memory, by part, from the profile it was solved on."""

from __future__ import annotations

import math

from profiler.accounting import plan_memory
from profiler.schema import Profile
from solver import Plan


def with_memory(plan: Plan, profile: Profile) -> Plan:
    """Return `plan` with `memory_total_bytes` and `memory_breakdown` (weights, trainable_state, activations,
    logits, overhead; bytes) as the profile counts them for its selection."""
    parts = plan_memory(profile, plan.selected).model_dump()
    return plan.model_copy(update={"memory_total_bytes": math.fsum(parts.values()), "memory_breakdown": parts})
