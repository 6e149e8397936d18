"""Picklable measurement units and their results (what `stages.measure` consumes and returns)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from profiler.measure.tensors import TensorSpec
from profiler.measure.timing import Timing
from profiler.schema import DeviceSpec
from profiler.sites import Site


@dataclass(frozen=True)
class RunSettings:
    """Where and how to measure: device, dtype, timing repeats (0: untimed, on the meta device), seed, CPU threads."""

    device: str
    dtype: str
    repeats: int
    warmup: int
    seed: int
    threads: int
    target: DeviceSpec | None = None
    """A GPU to predict times for (roofline, on meta) instead of timing on `device`."""


@dataclass
class SiteUnit:
    """Measure `method` at each of `settings` on an isolated copy of `host` (meta module) fed `input`."""

    key: str
    method: str
    settings: list[int | None]
    host: nn.Module
    site: Site
    input: TensorSpec
    run: RunSettings


@dataclass(frozen=True)
class InLayer:
    """A method at one setting on a site inside a layer (its path relative to the layer): what it saves for
    backward in place, beyond what the frozen layer saves already, is measured with the layer."""

    key: str
    method: str
    setting: int | None
    site: Site


@dataclass
class LayerUnit:
    """Measure a frozen layer (`host`, meta module) at each recorded call variant: (tokens, args, kwargs) specs;
    and at the first variant, the activations each of `in_layer` adds to it."""

    key: str
    host: nn.Module
    variants: list[tuple[int, Any, Any]]
    run: RunSettings
    in_layer: list[InLayer] = field(default_factory=list)


Unit = SiteUnit | LayerUnit


@dataclass
class SettingCost:
    """Costs one setting adds to its host: FLOPs, times (ms), bytes (`activation_bytes` saved for backward
    besides `input_bytes`, the host's own input when the method saves it: shared with other sites reading it)."""

    inference_flops: float
    backward_flops: float
    latency: Timing | None
    train_step: Timing
    activation_bytes: int
    input_bytes: int
    state_bytes: int
    peak_bytes: int | None


@dataclass
class SiteMeasurement:
    key: str
    costs: dict[int | None, SettingCost]


@dataclass
class VariantCost:
    """A frozen layer's forward/backward FLOPs and times (ms), saved-activation bytes, the bytes of its input
    (hidden states: what gradient checkpointing keeps) and of what it saves of its other inputs (the context
    every layer shares: position embeddings, masks; saved once in the model) at one call shape."""

    forward_flops: float
    backward_flops: float
    forward: Timing
    backward: Timing
    activation_bytes: int
    input_bytes: int
    context_bytes: int


@dataclass
class LayerMeasurement:
    key: str
    variants: dict[int, VariantCost]
    in_layer: dict[str, tuple[int, int]] = field(default_factory=dict)
    """InLayer key -> (activation bytes it adds besides its input, bytes of its input if it newly saves it)."""


Measurement = SiteMeasurement | LayerMeasurement


def signature(module: nn.Module) -> str:
    """A short hash identifying a module's type, structure and parameter shapes."""
    shapes = [(n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters()]
    text = f"{type(module).__module__}.{type(module).__qualname__}|{module!r}|{shapes}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def unit_key(*parts: object) -> str:
    """A short stable hash of the parts."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]
