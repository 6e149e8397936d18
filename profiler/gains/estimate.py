"""A gain estimate with its provenance, and writing estimates into a Profile.

Gains are in accuracy points (percentage points of validation accuracy over the head-only
baseline) for every source, so plans mixing sources add like with like.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from profiler.schema import Profile
from solver import Strict

Source = Literal["user", "prior", "gradient", "probe", "activation", "gradient-importance", "gradient-l1",
                 "weight-condition"]


class GainEstimate(Strict):
    """A candidate's gain (accuracy points, >= 0), where it came from, and how it was obtained."""

    gain: float = Field(ge=0)
    source: Source
    details: dict[str, Any] = Field(default_factory=dict)


def with_gains(profile: Profile, estimates: dict[str, GainEstimate], *, complete: bool = True) -> Profile:
    """A copy of `profile` whose candidates carry the estimates (gain, gain_source, gain_details).

    With `complete`, every candidate must have an estimate (KeyError naming the first missing one);
    ids that are not in the profile are an error either way.
    """
    ids = {c.id for c in profile.candidates}
    unknown = sorted(set(estimates) - ids)
    if unknown:
        raise KeyError(f"estimates for unknown candidate(s): {unknown[:3]}")
    candidates = []
    for c in profile.candidates:
        e = estimates.get(c.id)
        if e is None:
            if complete:
                raise KeyError(f"no gain estimate for candidate {c.id!r}")
            candidates.append(c)
            continue
        candidates.append(c.model_copy(update={"gain": e.gain, "gain_source": e.source, "gain_details": e.details}))
    return profile.model_copy(update={"candidates": candidates})
