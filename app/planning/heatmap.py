"""A plan as a grid of layers x module kinds: one mark per selected candidate, shaded by its gain.

Candidates come with data (a problem's or a profile's: method, layer, site, config, gain, params), or
as bare ids, which are read as `"{site}:{method}[:{suffix}{setting}]"` (the layer is then the first
number in the site path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.planning.chart import Heatmap, Mark
from app.planning.module_kinds import kind_order, module_kind, path_kind
from profiler.candidates import parse_id
from profiler.errors import ProfileError
from profiler.methods.registry import get_method

SHORT = {"lora": "LoRA", "adapter": "adapter", "bitfit": "BitFit", "norm_affine": "affine",
         "prompt_tuning": "prompt", "ia3": "(IA)³"}
"""How a mark names its method (it has room for about nine characters)."""
_NUMBER = re.compile(r"(?:^|\.)([0-9]+)(?:\.|$)")


@dataclass(frozen=True)
class Placed:
    """A candidate's place in the grid (layer, kind) and what its mark says (method, setting, gain, params)."""

    id: str
    method: str
    site: str
    layer: int | None
    kind: str
    setting: str
    gain: float | None
    params: int | None


def _setting(candidate_id: str, method: str, config: dict[str, Any] | None) -> str:
    """The setting as the id writes it ("r8", "b16", "m20"), or from the config; "" without one."""
    try:
        ref = parse_id(candidate_id)
        if ref.setting is not None:
            return candidate_id.rsplit(":", 1)[1]
    except ProfileError:
        pass
    try:
        m = get_method(method)
    except ProfileError:
        return ""
    value = (config or {}).get(m.info.setting or "")
    return f"{m.suffix}{value}" if isinstance(value, int) else ""


def place(candidate: Any) -> Placed:
    """Where a candidate (anything with `id`, `method`, `layer`, `site`, `config`, `gain`, `params`) goes."""
    site = candidate.site or _site_of(candidate.id)
    return Placed(
        id=candidate.id, method=candidate.method, site=site, layer=candidate.layer,
        kind=module_kind(site, candidate.method), setting=_setting(candidate.id, candidate.method, candidate.config),
        gain=candidate.gain, params=candidate.params,
    )


def place_id(candidate_id: str) -> Placed:
    """Where a bare candidate id goes: its site, method and setting read from the id, the layer from the path."""
    try:
        ref = parse_id(candidate_id)
        site, method = ref.site, ref.method
    except ProfileError:
        site, method = _site_of(candidate_id), "?"
    number = _NUMBER.search(site)
    return Placed(id=candidate_id, method=method, site=site, layer=int(number.group(1)) if number else None,
                  kind=module_kind(site, method), setting=_setting(candidate_id, method, None), gain=None, params=None)


def _site_of(candidate_id: str) -> str:
    """The site part of an id that does not parse: everything before its first ':'."""
    return candidate_id.split(":", 1)[0]


def _row_label(layer: int | None) -> str:
    return "no layer" if layer is None else f"layer {layer}"


def _mark(p: Placed, top_gain: float | None) -> Mark:
    detail = path_kind(p.site) if p.method == "bitfit" else p.setting
    gain = "unknown" if p.gain is None else f"{p.gain:.4g}"
    params = "unknown" if p.params is None else f"{p.params:,}"
    tooltip = f"{p.id}\nmethod {p.method}{f' {p.setting}' if p.setting else ''}\ngain {gain}\nparams {params}"
    shade = None if p.gain is None or not top_gain else p.gain / top_gain
    return Mark(key=p.id, lines=(SHORT.get(p.method, p.method[:9]), detail), tooltip=tooltip, shade=shade)


def plan_heatmap(selected: Sequence[str], candidates: Iterable[Placed]) -> Heatmap:
    """The grid of a plan: rows are the layers and columns the module kinds any candidate has, one mark per
    selected id (placed from its id alone when `candidates` lack it), open cells where nothing was chosen."""
    by_id = {p.id: p for p in candidates}
    chosen = [by_id.get(cid) or place_id(cid) for cid in selected]
    everything = [*by_id.values(), *(p for p in chosen if p.id not in by_id)]
    layers = sorted({p.layer for p in everything}, key=lambda layer: (layer is None, layer or 0))
    kinds = sorted({p.kind for p in everything}, key=kind_order)
    row, column = {layer: i for i, layer in enumerate(layers)}, {kind: i for i, kind in enumerate(kinds)}
    gains = [p.gain for p in chosen if p.gain is not None]
    top = max(gains, default=None)
    marks: dict[tuple[int, int], list[Mark]] = {}
    for p in chosen:
        marks.setdefault((row[p.layer], column[p.kind]), []).append(_mark(p, top))
    legend = None if top is None else ("gain 0", f"gain {top:.4g}")
    return Heatmap(
        rows=[_row_label(layer) for layer in layers], columns=kinds, marks=marks,
        open=frozenset((row[p.layer], column[p.kind]) for p in everything) - marks.keys(), legend=legend,
    )
