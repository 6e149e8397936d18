"""A plan's training memory by the profile's account, by part (plain arithmetic on a stored profile, no torch)."""

from __future__ import annotations

from collections.abc import Iterable

from profiler.schema import MemoryParts, Profile


def plan_memory(profile: Profile, selected: Iterable[str]) -> MemoryParts:
    """The training memory of a plan by the profile's account, bytes by part: the fixed parts, the chosen
    candidates' state and own activations, the activations of every layer backward reaches (down to the
    earliest adapted layer), and each saved input any chosen candidate needs, once."""
    by_id = {c.id: c for c in profile.candidates}
    chosen = [by_id[cid] for cid in selected]
    fixed = profile.memory.fixed
    layers = [c.layer for c in chosen if c.layer is not None]
    reached = sum(la.memory_bytes for la in profile.layers if layers and la.index >= min(layers))
    inputs = {i.key: i.bytes for i in profile.saved_inputs}
    shared = sum(inputs[key] for key in {c.saved_input for c in chosen if c.saved_input is not None})
    return fixed.model_copy(update={
        "trainable_state": fixed.trainable_state + sum(c.state_bytes for c in chosen),
        "activations": fixed.activations + sum(c.activation_bytes for c in chosen) + reached + shared,
    })
