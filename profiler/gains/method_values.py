"""A cheap signal's raw scores as accuracy points: each method's value, from the prior or a few probes,
shared among the method's candidates by the signal.

* **No probes.** One scale per method, gain = scale_m x raw, with scale_m making the method's summed
  gain equal its summed prior gain (`prior.py`, a fit on one model and task shared across tasks): the
  signal ranks sites and settings within a method, the prior sets the method's level.
* **P probes** (after the head-only baseline), in this order as far as P goes (`probe_plan`):
  1. the *top method* (the largest summed prior gain) on every site at its smallest setting;
  2. every method at its smallest setting, together (when there are several methods);
  3. the top method on every site at its largest setting (when it has several settings).
  A probe is worth V = max(0, k·Δloss), k the points per nat fitted through the origin over the
  probes (`calibrate.points_per_nat`). The top method's curve is its V at the probed settings. Every
  other method, at its smallest setting, gets the mixture's value above the top method's bundle,
  max(0, V_mix - V_top), split among them by their bundles' summed prior gain (they are worth what
  they add beside the top method); with no mixture probe, its bundle's prior gain times the top
  method's probed-to-prior ratio.
  A candidate of method m at setting s is worth the method's curve at s (linear in log s between
  probed settings) times its site's share of the method's raw score at s. Outside the probed settings
  the curve and the share are held at the nearest probed setting: a site at a larger setting than any
  probe trained is worth what it is at the largest probed one, so a plan pays for more rank only where
  a probe showed it buys more (in a short run it often buys less, which no cheap signal sees).
Gains add linearly: the noisy-OR saturation of `calibrate` needs a full fine-tuning probe.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, Field

from profiler.candidates import CandidateRef, parse_id
from profiler.gains.calibrate import BundleResult, BundleSpec, curve_value, points_per_nat, setting_key

MIXTURE = "every method at its smallest setting"
MAX_PROBES = 3  # the sequence's length: a probe budget beyond it buys nothing
Curve = list[tuple[int | None, float]]


def _members(candidate_ids: list[str]) -> dict[str, dict[int | None, list[str]]]:
    """method -> setting -> candidate ids (sorted)."""
    out: dict[str, dict[int | None, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cid in sorted(candidate_ids):
        ref = parse_id(cid)
        out[ref.method][ref.setting].append(cid)
    return out


def _smallest(by_setting: dict[int | None, list[str]]) -> int | None:
    return min(by_setting, key=setting_key)


def method_order(candidate_ids: list[str], prior: dict[str, float]) -> list[str]:
    """Methods by summed prior gain, largest first (ties by name): the first is the top method."""
    sums: dict[str, float] = defaultdict(float)
    for cid in candidate_ids:
        sums[parse_id(cid).method] += prior[cid]
    return sorted(sums, key=lambda m: (-sums[m], m))


def probe_plan(candidate_ids: list[str], prior: dict[str, float], probes: int) -> list[BundleSpec]:
    """The first `probes` bundles of the sequence in the module docstring (fewer when the profile has fewer)."""
    members = _members(candidate_ids)
    order = method_order(candidate_ids, prior)
    if not order or probes <= 0:
        return []
    top = members[order[0]]
    low, high = _smallest(top), max(top, key=setting_key)
    plan = [BundleSpec(role=order[0], setting=low, candidates=top[low])]
    if len(order) > 1:
        plan.append(BundleSpec(role=MIXTURE, setting=None, candidates=sorted(
            cid for m in order for cid in members[m][_smallest(members[m])])))
    if high != low:
        plan.append(BundleSpec(role=order[0], setting=high, candidates=top[high]))
    return plan[:probes]


class ProbedBundle(BaseModel):
    """One probe of a cheap source: its bundle, what it measured against head only, and what it is worth."""

    name: str
    candidates: int
    params: int
    points: float = Field(description="Validation accuracy gain over head only, accuracy points.")
    loss_decrease: float = Field(description="Validation cross-entropy decrease over head only, nats.")
    value: float = Field(description="max(0, k·Δloss), accuracy points: what the bundle is worth.")


class MethodValue(BaseModel):
    """How one method's raw scores became accuracy points."""

    method: str
    candidates: int
    raw_sum: float = Field(description="Summed raw score of the method's candidates.")
    prior_points: float = Field(description="Summed prior gain of the method's candidates, points.")
    basis: Literal["prior", "probe", "mixture", "prior x probe"] = Field(
        description="prior: scaled to its summed prior gain; probe: its own bundles probed; mixture: its share of "
                    "what the mixture added beside the top method; prior x probe: its prior times the top method's "
                    "probed-to-prior ratio.")
    scale: float | None = Field(default=None, description="Points per unit of raw score (basis prior).")
    curve: Curve = Field(default_factory=list, description="The method's value on every site at each probed "
                         "setting, points (bases other than prior); held outside them.")


def _sums(values: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for cid, v in values.items():
        out[parse_id(cid).method] += v
    return out


def method_values(scores: dict[str, float], prior: dict[str, float], plan: list[BundleSpec],
                  measured: dict[str, BundleResult]) -> list[MethodValue]:
    """Each method's value (module docstring) from raw scores, prior gains and the probes of `plan` (bundle name ->
    what it measured; every bundle of `plan` measured)."""
    raw, points, counts = _sums(scores), _sums(prior), _sums(dict.fromkeys(scores, 1.0))
    rows = {m: MethodValue(method=m, candidates=int(counts[m]), raw_sum=raw[m], prior_points=points[m], basis="prior",
                           scale=points[m] / raw[m] if raw[m] > 0 else 0.0) for m in raw}
    if not plan:
        return list(rows.values())
    k = points_per_nat(list(measured.values()))
    value = {b.name: max(0.0, k * measured[b.name].loss_decrease) for b in plan}
    top = plan[0].role
    curve = sorted(((b.setting, value[b.name]) for b in plan if b.role == top), key=lambda p: setting_key(p[0]))
    rows[top] = rows[top].model_copy(update={"basis": "probe", "scale": None, "curve": curve})
    members = _members(list(scores))
    others = [m for m in method_order(list(scores), prior) if m != top]
    bundle_prior = {m: sum(prior[c] for c in members[m][_smallest(members[m])]) for m in members}
    mixed = next((b for b in plan if b.role == MIXTURE), None)
    total = sum(bundle_prior[m] for m in others)
    for m in others:
        if mixed is not None:
            above = max(0.0, value[mixed.name] - curve[0][1])
            worth, basis = (above * bundle_prior[m] / total if total > 0 else 0.0), "mixture"
        else:
            worth = bundle_prior[m] * curve[0][1] / bundle_prior[top] if bundle_prior[top] > 0 else 0.0
            basis = "prior x probe"
        rows[m] = rows[m].model_copy(update={"basis": basis, "scale": None,
                                             "curve": [(_smallest(members[m]), worth)]})
    return list(rows.values())


def _held(curve: Curve, setting: int | None) -> int | None:
    """`setting` clamped into the curve's probed settings (None for a method without settings)."""
    if setting is None or curve[0][0] is None:
        return curve[0][0]
    return min(max(setting, curve[0][0]), curve[-1][0])  # type: ignore[type-var]


def candidate_gains(scores: dict[str, float], values: list[MethodValue]) -> dict[str, tuple[float, dict]]:
    """Each candidate's gain (points) and how it was made: scale x raw on the prior basis; else the method's curve at
    its (held) setting times its site's share of the method's raw score at that setting."""
    by_method = {v.method: v for v in values}
    at: dict[tuple[str, str, int | None], float] = {}
    sums: dict[tuple[str, int | None], float] = defaultdict(float)
    counts: dict[tuple[str, int | None], int] = defaultdict(int)
    refs: dict[str, CandidateRef] = {cid: parse_id(cid) for cid in scores}
    for cid, s in scores.items():
        ref = refs[cid]
        at[(ref.method, ref.site, ref.setting)] = s
        sums[(ref.method, ref.setting)] += s
        counts[(ref.method, ref.setting)] += 1
    out = {}
    for cid, s in scores.items():
        ref, v = refs[cid], by_method[refs[cid].method]
        if v.basis == "prior":
            out[cid] = (v.scale * s, {"method_scale": v.scale, "scale_basis": v.basis})  # type: ignore[operator]
            continue
        setting = _held(v.curve, ref.setting)
        if (ref.method, ref.site, setting) not in at:  # the site lacks that setting: its own
            setting = ref.setting
        key = (ref.method, setting)
        raw = at[(ref.method, ref.site, setting)]
        share = raw / sums[key] if sums[key] > 0 else 1 / counts[key]
        worth = curve_value(v.curve, setting)
        out[cid] = (worth * share, {"scale_basis": v.basis, "valued_at_setting": setting,
                                    "method_value_points": worth, "share_of_method": share})
    return out
