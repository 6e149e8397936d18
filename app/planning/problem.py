"""From a stored profile to a solver `Problem`: budgets, gains and objective.

Budgets may be absolute numbers or percentages of the model:

* ``params: "0.5%"`` is 0.5 % of the model's ``total_params``;
* ``flops: "20%"`` is 20 % of a full fine-tuning training step, taken as
  3 x the model's ``forward_flops`` (forward + backward ~ 2 x forward);
  when ``flops`` is omitted the budget is 100 % of that step.

Gains come from, in order of precedence: ``gains.candidates`` (by candidate
id), ``gains.methods`` (by method, optionally per layer index), then the
gains the profile holds (unless ``gains.use_profile`` is false). A candidate
left without a gain is an error naming it, not a silent zero.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from solver.problem import Budget, Candidate, LayerCost, Problem, SavedInput, Strict

_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
_AMOUNT = re.compile(rf"^\s*({_NUMBER})\s*(%?)\s*$")

Amount = float | str


class PlanningError(ValueError):
    """The profile and request cannot make a valid problem (an HTTP 422)."""


class BudgetSpec(Strict):
    """A budget with absolute numbers or percentages of the model ("0.5%")."""

    params: Amount = Field(description='Trainable parameters: a number, or "0.5%" of the model.')
    flops: Amount = Field(
        default="100%",
        description='Training FLOPs per step: a number, or "20%" of full fine-tuning (3x forward).',
    )
    latency_ms: float | None = Field(default=None, gt=0)
    memory: float | str | None = Field(
        default=None,
        description='Total training memory of the plan, frozen weights and every fixed part included: '
        'bytes, or a size like "24GiB" or "80GB".')
    memory_bytes: float | None = Field(
        default=None, gt=0, description="Cap on the adapters' own memory (candidates and shared layers), bytes.")

    @field_validator("params", "flops")
    @classmethod
    def _amount(cls, value: Amount) -> Amount:
        parse_amount(value, 1.0)
        return value

    @field_validator("memory")
    @classmethod
    def _size(cls, value: float | str | None) -> float | str | None:
        if value is not None:
            parse_size(value)
        return value

    @model_validator(mode="after")
    def _one_memory_cap(self) -> BudgetSpec:
        if self.memory is not None and self.memory_bytes is not None:
            raise ValueError("give budget.memory (total) or budget.memory_bytes (adapters only), not both")
        return self


class MethodGain(Strict):
    """A method's gain: a default for every layer and overrides by layer index."""

    default: float | None = Field(default=None, ge=0)
    layers: dict[Annotated[int, Field(strict=False)], float] = Field(
        default_factory=dict, description='Gains by layer index (JSON keys are strings: "3").')

    @field_validator("layers")
    @classmethod
    def _non_negative(cls, layers: dict[int, float]) -> dict[int, float]:
        for index, gain in layers.items():
            if index < 0 or gain < 0:
                raise ValueError("layer indices and gains must be >= 0")
        return layers


class GainSpec(Strict):
    """Gains by candidate id and by method; the profile's own gains fill the rest."""

    candidates: dict[str, float] = Field(default_factory=dict)
    methods: dict[str, float | MethodGain] = Field(default_factory=dict)
    use_profile: bool = Field(default=True, description="Fall back to the profile's gains.")

    @field_validator("candidates")
    @classmethod
    def _non_negative(cls, gains: dict[str, float]) -> dict[str, float]:
        if any(g < 0 for g in gains.values()):
            raise ValueError("gains must be >= 0")
        return gains

    @field_validator("methods")
    @classmethod
    def _non_negative_methods(cls, gains: dict[str, Any]) -> dict[str, Any]:
        if any(isinstance(g, float) and g < 0 for g in gains.values()):
            raise ValueError("gains must be >= 0")
        return gains


_SIZE = re.compile(rf"^\s*({_NUMBER})\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(value: float | str) -> float:
    """Return a memory size in bytes: a number of bytes, or text like "24GiB", "80 GB", "512MiB"."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a size like '24GiB', '80GB' or a number of bytes")
        size = float(match.group(1)) * _UNITS[(match.group(2) or "B").lower()]
    else:
        size = float(value)
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"{value!r} must be a positive, finite size")
    return size


def fixed_memory(profile: Any) -> float:
    """Return the bytes any plan of the profile pays: frozen weights, head state, logits, overhead."""
    parts = profile.memory.fixed
    return math.fsum([parts.weights, parts.trainable_state, parts.activations, parts.logits, parts.overhead])


def parse_amount(value: Amount, whole: float) -> float:
    """An absolute amount, or a percentage of `whole`; must come out finite and > 0."""
    if isinstance(value, str):
        match = _AMOUNT.match(value)
        if match is None:
            raise ValueError(f"{value!r} is neither a number nor a percentage like '0.5%'")
        number = float(match.group(1))
        amount = number * whole / 100.0 if match.group(2) else number
    else:
        amount = float(value)
    if not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"{value!r} must be a positive finite amount")
    return amount


def _gain_for(candidate: Any, gains: GainSpec) -> tuple[float | None, str]:
    if candidate.id in gains.candidates:
        return gains.candidates[candidate.id], "candidate"
    by_method = gains.methods.get(candidate.method)
    if isinstance(by_method, float | int):
        return float(by_method), "method"
    if by_method is not None:
        if candidate.layer is not None and candidate.layer in by_method.layers:
            return by_method.layers[candidate.layer], "method-layer"
        if by_method.default is not None:
            return by_method.default, "method"
    if gains.use_profile and candidate.gain is not None:
        return candidate.gain, getattr(candidate, "gain_source", None) or "profile"
    return None, "missing"


def gain_sources(profile: Any, gains: GainSpec | dict | None = None) -> dict[str, int]:
    """How many of the profile's candidates take their gain from each source.

    User gains count as "candidate", "method" or "method-layer"; the profile's own gains count under
    their recorded `gain_source` ("prior", "gradient", "probe"; "profile" when unrecorded), so a plan
    whose counts include "prior" rests, at least in part, on the documented prior.
    """
    gains = GainSpec.model_validate(gains or {})
    counts = {"candidate": 0, "method": 0, "method-layer": 0, "profile": 0, "missing": 0}
    for c in profile.candidates:
        source = _gain_for(c, gains)[1]
        counts[source] = counts.get(source, 0) + 1
    return counts


def problem_from_profile(
    profile: Any,
    budget: BudgetSpec | dict,
    objective: Literal["gain", "efficiency"] = "gain",
    gains: GainSpec | dict | None = None,
    min_gain: float = 0.0,
) -> Problem:
    """Build the solver problem for a profile (a `profiler.schema.Profile`).

    Raises `PlanningError` when a budget is invalid, when a gain names an
    unknown candidate or method, or when some candidate has no gain.
    """
    budget = BudgetSpec.model_validate(budget)
    gains = GainSpec.model_validate(gains or {})
    known_ids = {c.id for c in profile.candidates}
    unknown = sorted(set(gains.candidates) - known_ids)
    if unknown:
        raise PlanningError(f"gains.candidates: unknown candidate id(s) {_sample(unknown)}")
    methods = {c.method for c in profile.candidates}
    unknown = sorted(set(gains.methods) - methods)
    if unknown:
        raise PlanningError(
            f"gains.methods: method(s) {_sample(unknown)} not in this profile "
            f"(it has {_sample(sorted(methods))})"
        )
    candidates, missing = [], []
    for c in profile.candidates:
        gain, _source = _gain_for(c, gains)
        if gain is None:
            missing.append(c.id)
            continue
        candidates.append(Candidate(
            id=c.id, method=c.method, group=c.group, layer=c.layer, gain=gain,
            params=c.params, flops=c.flops, latency_ms=c.latency_ms,
            memory_bytes=c.memory_bytes, site=c.site, config=c.config, saved_input=c.saved_input,
        ))
    if missing:
        raise PlanningError(
            f"no gain for {len(missing)} of {len(profile.candidates)} candidates "
            f"(e.g. {_sample(missing)}): give gains by candidate id or by method, "
            "or use a profile with estimated gains"
        )
    memory_cap = budget.memory_bytes
    if budget.memory is not None:
        total, fixed = parse_size(budget.memory), fixed_memory(profile)
        if fixed >= total:
            raise PlanningError(
                f"budget.memory: {budget.memory!r} is {total / 2**30:.2f} GiB, but the frozen weights and fixed "
                f"parts alone need {fixed / 2**30:.2f} GiB (weights {profile.memory.fixed.weights / 2**30:.2f} GiB); "
                "try --quantization nf4, --checkpointing or a smaller batch")
        memory_cap = total - fixed
    try:
        caps = Budget(
            params=parse_amount(budget.params, profile.model.total_params),
            flops=parse_amount(budget.flops, 3.0 * profile.model.forward_flops),
            latency_ms=budget.latency_ms,
            memory_bytes=memory_cap,
        )
    except ValueError as exc:
        raise PlanningError(f"budget: {exc}") from exc
    cheapest = min(c.params for c in candidates)
    if caps.params < cheapest:
        hint = ("; a plain number is parameters, write it with % for a share of the model"
                if not (isinstance(budget.params, str) and budget.params.strip().endswith("%")) else "")
        raise PlanningError(f"budget.params: {budget.params!r} allows {caps.params:,.0f} trainable parameters, fewer "
                            f"than the cheapest candidate's {cheapest:,}{hint}")
    layers = [
        LayerCost(index=layer.index, backward_flops=layer.backward_flops,
                  memory_bytes=layer.memory_bytes)
        for layer in profile.layers
    ]
    saved_inputs = [SavedInput(key=i.key, memory_bytes=i.bytes) for i in profile.saved_inputs]
    return Problem(
        candidates=candidates, layers=layers, saved_inputs=saved_inputs, budget=caps,
        objective=objective, min_gain=min_gain,
    )


def _sample(items: list[str], k: int = 3) -> str:
    shown = ", ".join(repr(i) for i in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")
