"""Pydantic schemas of the planning problem and its plan (the solver contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Objective = Literal["gain", "efficiency"]
Status = Literal["optimal", "feasible", "infeasible"]


# Upper bound of every cost, gain and budget: far above any real model or run
# (1e30 FLOPs), and low enough that M = gain / sqrt(p*c) stays a finite float.
MAX_VALUE = 1e30
# Lower bound of FLOP counts and of the params/flops budgets: with MAX_VALUE it
# bounds the dynamic range, so the efficiency search's rows stay finite.
MIN_COST = 1e-9
MAX_LAYER = 1_000_000


class Strict(BaseModel):
    """Base: unknown fields are errors, NaN and infinities are rejected, and types are strict (`false` is no
    number, `"3"` no integer; a field that must parse text, like a timestamp, says so)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Candidate(Strict):
    """One adapter choice (method x setting x site) with its gain and costs."""

    id: str = Field(min_length=1, max_length=512)
    method: str = Field(min_length=1, max_length=64)
    group: str | None = Field(default=None, max_length=512)
    layer: int | None = Field(default=None, ge=0, le=MAX_LAYER)
    gain: float = Field(ge=0, le=MAX_VALUE)
    params: int = Field(gt=0, le=10**30)
    flops: float = Field(ge=MIN_COST, le=MAX_VALUE)
    latency_ms: float = Field(default=0.0, ge=0, le=MAX_VALUE)
    memory_bytes: float = Field(default=0.0, ge=0, le=MAX_VALUE)
    site: str | None = None
    config: dict[str, Any] | None = None
    saved_input: str | None = Field(
        default=None, max_length=512,
        description="Key of the input activation it saves for backward (in `saved_inputs`): its memory is "
        "paid once by all the chosen candidates that save it, and is not in `memory_bytes`.",
    )


class LayerCost(Strict):
    """Shared cost of a layer, paid once when any chosen candidate sits at or below it."""

    index: int = Field(ge=0, le=MAX_LAYER)
    backward_flops: float = Field(default=0.0, ge=0, le=MAX_VALUE)
    memory_bytes: float = Field(default=0.0, ge=0, le=MAX_VALUE)


class SavedInput(Strict):
    """An input activation several candidates save (q, k and v read one input): paid once when any is chosen."""

    key: str = Field(min_length=1, max_length=512)
    memory_bytes: float = Field(ge=0, le=MAX_VALUE)


class Budget(Strict):
    """Caps on the plan's totals; params and flops are required."""

    params: float = Field(ge=MIN_COST, le=MAX_VALUE)
    flops: float = Field(ge=MIN_COST, le=MAX_VALUE)
    latency_ms: float | None = Field(default=None, gt=0, le=MAX_VALUE)
    memory_bytes: float | None = Field(default=None, gt=0, le=MAX_VALUE)


class Problem(Strict):
    """Candidates, shared layer costs and saved inputs, a budget and an objective."""

    candidates: list[Candidate] = Field(min_length=1)
    layers: list[LayerCost] = Field(default_factory=list)
    saved_inputs: list[SavedInput] = Field(default_factory=list)
    budget: Budget
    objective: Objective = "gain"
    min_gain: float = Field(default=0.0, ge=0, le=MAX_VALUE)

    @field_validator("candidates")
    @classmethod
    def _unique_ids(cls, candidates: list[Candidate]) -> list[Candidate]:
        seen: set[str] = set()
        for c in candidates:
            if c.id in seen:
                raise ValueError(f"duplicate candidate id {c.id!r}")
            seen.add(c.id)
        return candidates

    @field_validator("layers")
    @classmethod
    def _unique_layers(cls, layers: list[LayerCost]) -> list[LayerCost]:
        indices = [layer.index for layer in layers]
        if len(set(indices)) != len(indices):
            raise ValueError("duplicate layer index")
        return layers

    @field_validator("saved_inputs")
    @classmethod
    def _unique_inputs(cls, inputs: list[SavedInput]) -> list[SavedInput]:
        keys = [i.key for i in inputs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate saved input key")
        return inputs

    @model_validator(mode="after")
    def _inputs_known(self) -> Problem:
        known = {i.key for i in self.saved_inputs}
        for i, c in enumerate(self.candidates):
            if c.saved_input is not None and c.saved_input not in known:
                raise ValueError(f"candidates[{i}].saved_input: {c.saved_input!r} has no entry in saved_inputs")
        return self

    @model_validator(mode="after")
    def _layers_known(self) -> Problem:
        if self.layers:
            known = {layer.index for layer in self.layers}
            for i, c in enumerate(self.candidates):
                if c.layer is not None and c.layer not in known:
                    raise ValueError(
                        f"candidates[{i}].layer: {c.layer} has no entry in layers"
                    )
        return self


class Plan(BaseModel):
    """The chosen candidates and their totals; `efficiency` is M = gain / sqrt(p*c)."""

    status: Status
    objective: Objective
    selected: list[str]
    gain: float
    params: int
    flops: float
    latency_ms: float
    memory_bytes: float = Field(description="Training memory the adapters add: the candidates', the layers "
                                "backward reaches, and each saved input once (bytes).")
    memory_total_bytes: float | None = Field(
        default=None, description="Total training memory, bytes: `memory_breakdown` summed (plans of a profile).")
    memory_breakdown: dict[str, float] | None = Field(
        default=None, description="Total training memory by part, bytes: weights, trainable_state, activations, "
        "logits, overhead (plans of a profile).")
    p: float
    c: float
    efficiency: float | None
    bound: float | None = Field(
        default=None,
        description="Best proven upper bound of the objective (equals it when optimal).",
    )
    solve_ms: float


class SolveTimeout(RuntimeError):
    """The time limit passed before any plan meeting the constraints was found."""
