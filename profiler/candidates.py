"""Sites of a live model, and candidate ids back to (site, method, setting).

Candidate ids are "{site path}:{method}" plus ":{suffix}{setting}" (see `Method.candidate_id`);
`parse_id` inverts that, and `SiteIndex` finds the `Site` a method attaches to on a real model
(recorded from one forward pass with example inputs, as the profiler does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from profiler.errors import ProfileError
from profiler.measure.trace import record
from profiler.methods.registry import get_method
from profiler.sites import Site, find_layers, find_sites


@dataclass(frozen=True)
class CandidateRef:
    """What a candidate id names: site path, method and setting (None for setting-less methods)."""

    id: str
    site: str
    method: str
    setting: int | None


def parse_id(candidate_id: str) -> CandidateRef:
    """Split a candidate id; ProfileError if the method is unknown or the setting malformed."""
    parts = candidate_id.rsplit(":", 2)
    for site, method, setting in ((parts[0], parts[1], parts[2]) if len(parts) == 3 else (None, None, None),
                                  (":".join(parts[:-1]), parts[-1], None)):
        if site is None or method is None:
            continue
        try:
            m = get_method(method)
        except ProfileError:
            continue
        if setting is None and not m.option:
            return CandidateRef(candidate_id, site, method, None)
        if setting is not None and m.option and re.fullmatch(rf"{re.escape(m.suffix)}[0-9]+", setting):
            return CandidateRef(candidate_id, site, method, int(setting[len(m.suffix):]))
    raise ProfileError(f"cannot read candidate id {candidate_id!r} as site:method[:setting]")


def example_inputs(model: nn.Module, seq_len: int = 8) -> dict[str, torch.Tensor]:
    """Token ids for a transformers model (from its config's vocab size); ProfileError otherwise."""
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if not isinstance(vocab, int):
        raise ProfileError("give example inputs for a model without a token vocabulary")
    device = next(model.parameters()).device
    return {"input_ids": torch.arange(seq_len, device=device).remainder(vocab).view(1, seq_len)}


class SiteIndex:
    """The sites of `model`, found from one traced call, by (path, kind).

    The call is `model(**inputs)`, or `model(inputs["x"])` for array inputs (as `Classifier` calls it).
    """

    def __init__(self, model: nn.Module, inputs: dict[str, Any] | None = None) -> None:
        inputs = inputs if inputs is not None else example_inputs(model)
        args, kwargs = ((inputs["x"],), {}) if set(inputs) == {"x"} else ((), inputs)
        trace = record(model, args, kwargs)
        self.sites = {(s.path, s.kind): s for s in find_sites(model, find_layers(model), trace)}

    def site_for(self, ref: CandidateRef) -> Site:
        """The site `ref`'s method attaches to; ProfileError if the model has none there."""
        for kind in get_method(ref.method).site_kinds:
            site = self.sites.get((ref.site, kind))
            if site is not None:
                return site
        raise ProfileError(f"candidate {ref.id!r}: the model has no {ref.method} site at {ref.site!r}")
