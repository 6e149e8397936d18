"""The profiler in three stages, so a runner can fan `measure` out: prepare -> measure (per unit) -> assemble.

`prepare` builds the model (meta device where possible), records every module's input shapes from one
traced forward pass, lists sites and candidates, and groups candidates into unique measurement units:
candidates sharing (method, host module shape, input shape, dtype, device) are one unit.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from profiler.devices import resolve_device_spec
from profiler.errors import ProfileError
from profiler.measure.flops import FlopCount, forward_flops
from profiler.measure.footprint import (
    STATE_BYTES_PER_FP32_PARAM,
    head_state_bytes,
    logits_bytes,
    overhead_bytes,
    weight_bytes,
)
from profiler.measure.isolated import measure_layer, measure_site
from profiler.measure.tensors import TensorSpec
from profiler.measure.trace import Trace, record
from profiler.measure.units import (
    InLayer,
    LayerMeasurement,
    LayerUnit,
    Measurement,
    RunSettings,
    SiteMeasurement,
    SiteUnit,
    Unit,
    VariantCost,
    signature,
    unit_key,
)
from profiler.methods.base import Method, freeze
from profiler.methods.registry import get_method
from profiler.models.build import Built, build, config_dtype, max_tokens, resolve_task
from profiler.models.size import defaulted_shape, incomplete_config
from profiler.schema import (
    MemoryParts,
    ModelInfo,
    ModelSpec,
    Profile,
    ProfileCandidate,
    ProfileLayer,
    ProfileMemory,
    ProfileOptions,
    ProfileTimings,
    SavedInput,
)
from profiler.sites import Site, find_layers, find_sites

MEMORY_FRACTION = 0.5  # a model is materialized for tracing only if its weights fit in this share of memory


@dataclass
class PlannedCandidate:
    """A candidate before measurement: identity, exact params, and which unit (and setting) measures it."""

    id: str
    method: str
    group: str | None
    layer: int | None
    site: Site
    setting: int | None
    config: dict[str, Any]
    params: int
    unit: str
    in_layer: tuple[str, str] | None = None
    """(layer unit key, InLayer key) measuring its activations in place, for a site inside a layer."""


@dataclass
class Prepared:
    """Everything `measure` and `assemble` need; `units` are picklable and independent."""

    spec: ModelSpec
    options: ProfileOptions
    run: Any
    info: ModelInfo
    tokens: int
    inputs: dict[str, list[int]]
    layer_paths: list[str]
    layer_units: list[str]
    candidates: list[PlannedCandidate]
    units: list[Unit]
    memory: ProfileMemory
    notes: list[str]
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    prepare_s: float = 0.0


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when available else "cpu"; ProfileError if CUDA is asked for but absent."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ProfileError("device cuda requested but CUDA is not available")
    return device


def _fits(num_params: int, device: str) -> bool:
    need = 4 * num_params
    if device == "cuda":
        return need < MEMORY_FRACTION * torch.cuda.mem_get_info()[0]
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return need < MEMORY_FRACTION * total


@dataclass
class _Traced:
    built: Built
    trace: Trace
    longer: dict[int, Trace]
    flops: FlopCount


def _trace_on(spec: ModelSpec, options: ProfileOptions, device: str, attention: str | None,
              extra: list[int], built: Built | None = None) -> _Traced:
    built = built or build(spec, device, attention, options.task)
    dev = torch.device(device)
    args, kwargs = built.inputs(options.batch_size, options.seq_len, dev)
    if attention == "eager" and built.text:
        kwargs["attention_mask"] = torch.ones_like(kwargs["input_ids"])
    trace = _causal_masks_as_run(record(built.model, args, kwargs, reach=True), device, attention)
    flops = forward_flops(built.model, args, kwargs)
    longer = {}
    for m in extra:
        a, kw = built.inputs(options.batch_size, options.seq_len + m, dev)
        if "attention_mask" in kwargs:
            kw["attention_mask"] = torch.ones_like(kw["input_ids"])
        longer[m] = _causal_masks_as_run(record(built.model, a, kw), device, attention)
    return _Traced(built, trace, longer, flops)


def _causal_masks_as_run(trace: Trace, device: str, attention: str | None) -> Trace:
    """The trace with layers' 4-D attention masks dropped when recorded on meta with SDPA.

    On meta the forward runs under a jit trace (`profiler.measure.trace.record`), where transformers builds
    an explicit mask; run for real on unpadded inputs (ours), it passes none and lets SDPA apply causality
    itself, which saves different tensors (no mask, a fused kernel).
    """
    if device != "meta" or attention != "sdpa":
        return trace
    for call in trace.calls.values():
        mask = call.kwargs.get("attention_mask") if isinstance(call.kwargs, dict) else None
        if isinstance(mask, TensorSpec) and len(mask.shape) == 4:
            call.kwargs = {**call.kwargs, "attention_mask": None}
    return trace


def _trace(spec: ModelSpec, options: ProfileOptions, device: str, extra: list[int], max_params: int | None) -> _Traced:
    """Trace on meta (shapes only), then on meta with eager attention, then materialized if it fits.

    ProfileError before any tracing when the model has more than `max_params` parameters.
    """
    errors = []
    meta = build(spec, "meta", task=options.task)
    params = sum(p.numel() for p in meta.model.parameters())
    if max_params is not None and params > max_params:
        raise ProfileError(f"the model has {params:,} parameters; the limit is {max_params:,}")
    materialized = [(device, "sdpa")] if device != "meta" and _fits(params, device) else []
    attempts = [("meta", "sdpa"), ("meta", "eager"), *materialized]
    for dev, attention in attempts:
        try:
            return _trace_on(spec, options, dev, attention, extra, meta if (dev, attention) == ("meta", "sdpa") else None)
        except ProfileError:
            raise
        except Exception as exc:  # noqa: BLE001 - each attempt may fail in model code; the last error is reported
            errors.append(f"{dev}/{attention}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    raise ProfileError(f"cannot trace {spec.label()} ({params:,} params): " + "; ".join(errors))


def _check_shape(spec: ModelSpec, options: ProfileOptions, extra: list[int]) -> None:
    limit = max_tokens(spec)
    longest = options.seq_len + max(extra, default=0)
    if limit is not None and longest > limit:
        raise ProfileError(f"impossible shape: seq_len {options.seq_len} + prompt {max(extra, default=0)} = {longest} "
                           f"tokens exceeds the model's {limit} positions")


def _meta_copy(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).to("meta")


def prepare(spec: ModelSpec, options: ProfileOptions, max_params: int | None = None) -> Prepared:
    """Build the model, record shapes, list sites, candidates (with exact params) and unique units;
    ProfileError first thing for a model of more than `max_params` parameters."""
    start = time.perf_counter()
    methods: list[Method] = [get_method(name) for name in options.methods]
    target = resolve_device_spec(options.target_device) if options.target_device is not None else None
    timed = options.timing == "measure" and target is None
    device = resolve_device(options.device) if timed else "meta"
    dtype = options.dtype if options.dtype != "auto" else config_dtype(spec) or "float32"
    threads = options.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    run = RunSettings(device, dtype, options.repeats if timed else 0, options.warmup if timed else 0, options.seed,
                      threads, target)
    sequence = [m for m in methods if m.measured_by == "sequence"]
    extra = sorted({s for m in sequence for s in m.settings(options) if s is not None})
    _check_shape(spec, options, extra)
    defaulted = defaulted_shape(spec.config) if spec.config is not None and spec.config.get("model_type") != "small-cnn" \
        else {}
    if defaulted and not options.allow_defaults:
        raise ProfileError(incomplete_config(defaulted))
    traced = _trace(spec, options, device, extra, max_params)
    model = freeze(traced.built.model)
    layer_paths = find_layers(model)
    sites = find_sites(model, layer_paths, traced.trace, options.target_modules)
    dead = sorted({s.path for s in sites if s.kind != "embedding"} & set(traced.trace.unreached))
    sites = [s for s in sites if s.path not in dead]
    notes = [f"not offered, no gradient path to the task's output ({traced.built.head_output}): {', '.join(dead)}"
             ] if dead else []
    if defaulted:
        notes.append("shape keys the config left to transformers' defaults: "
                     + ", ".join(f"{key}={value}" for key, value in defaulted.items()))
    tokens = traced.built.tokens(options.seq_len)

    candidates: list[PlannedCandidate] = []
    units: dict[str, Unit] = {}
    for method in methods:
        for site in (s for s in sites if s.kind in method.site_kinds):
            settings = method.settings(options)
            key = ""
            if method.measured_by == "site":
                host, spec_in = method.host(site, model.get_submodule(site.path))
                key = unit_key(method.name, signature(host), spec_in, run)
                if key not in units:
                    units[key] = SiteUnit(key, method.name, settings, _meta_copy(host), site, spec_in, run)
            for setting in settings:
                attachment = method.attach(model, site, setting)
                params = attachment.num_parameters()
                attachment.detach()
                candidates.append(PlannedCandidate(
                    method.candidate_id(site, setting), method.name, method.group(site), site.layer, site, setting,
                    method.config(site, setting), params, key))
    if not candidates:
        raise ProfileError(f"no sites for methods {', '.join(options.methods)} in {spec.label()}"
                           + (f" matching {options.target_modules}" if options.target_modules else ""))
    with_prompts = [m for m in extra if any(c.setting == m and get_method(c.method).measured_by == "sequence"
                                              for c in candidates)]
    layer_keys = []
    for path in layer_paths:
        call = traced.trace.calls.get(path)
        if call is None:
            raise ProfileError(f"layer {path} never ran in the forward pass")
        variants = [(tokens, call.args, call.kwargs)] + [
            (tokens + m, traced.longer[m].calls[path].args, traced.longer[m].calls[path].kwargs) for m in with_prompts]
        layer = model.get_submodule(path)
        key = unit_key("layer", signature(layer), [(t, a, k) for t, a, k in variants], run)
        if key not in units:
            units[key] = LayerUnit(key, _meta_copy(layer), variants, run)
        layer_keys.append(key)
    _plan_in_layer(candidates, layer_paths, layer_keys, units)
    args, kwargs = traced.built.inputs(options.batch_size, options.seq_len, torch.device("meta"))
    task = resolve_task(spec, options.task)
    head, fixed = _head_and_fixed(model, task, options, tokens, layer_paths, dtype,
                                  "cuda" if target is not None else device)
    info = ModelInfo(name=traced.built.name, total_params=sum(p.numel() for p in model.parameters()),
                     num_layers=len(layer_paths), forward_flops=traced.flops.total, architecture=traced.built.architecture,
                     task=task, head=head)
    memory = ProfileMemory(fixed=fixed, dtype=dtype, adapter_dtype="float32",
                           quantization=options.quantization, checkpointing=options.checkpointing, notes=MEMORY_NOTES)
    return Prepared(spec, options, run, info, tokens, {k: list(v.shape) for k, v in kwargs.items()}, layer_paths,
                    layer_keys, candidates, list(units.values()), memory, notes, traced.flops.uncounted,
                    time.perf_counter() - start)


def _plan_in_layer(candidates: list[PlannedCandidate], layer_paths: list[str], layer_keys: list[str],
                   units: dict[str, Unit]) -> None:
    """Give each site candidate inside a layer an InLayer probe of its layer's unit (one per relative site,
    method and setting: identical layers share it)."""
    for c in candidates:
        if not c.unit or c.layer is None or c.layer >= len(layer_paths):
            continue
        path = layer_paths[c.layer]
        if not c.site.path.startswith(path + "."):
            continue
        unit = units[layer_keys[c.layer]]
        assert isinstance(unit, LayerUnit)
        site = replace(c.site, path=c.site.path[len(path) + 1:])
        key = unit_key(c.method, site.path, site.kind, c.setting)
        if all(probe.key != key for probe in unit.in_layer):
            unit.in_layer.append(InLayer(key, c.method, c.setting, site))
        c.in_layer = (unit.key, key)


MEMORY_NOTES = [
    "activations: each saved storage once; a layer's are paid when backward reaches it (down to the earliest "
    "adapted layer), a saved input shared by several sites once",
    "with checkpointing: each reached layer keeps its input; one layer's activations are live at a time while "
    "it is recomputed (the largest layer's, a fixed part); adapters' own tensors are recomputed too",
    "trainable state: new adapter parameters in float32 (16 bytes each with AdamW); existing ones (biases, "
    "norms) add a gradient and two moments in their dtype",
]


def _head_and_fixed(model: nn.Module, task: str, options: ProfileOptions, tokens: int, layer_paths: list[str],
                    dtype: str, device: str) -> tuple[str, MemoryParts]:
    """The task head's description and the fixed memory parts (`profiler.measure.footprint`), without the
    checkpointing peak (known once layers are measured)."""
    weights = weight_bytes(model, layer_paths, dtype, options.quantization)
    overhead = overhead_bytes(device)
    if task == "causal_lm":
        lm_head = model.get_output_embeddings()
        tied = lm_head is not None and lm_head.weight is model.get_input_embeddings().weight
        vocab = int(lm_head.weight.shape[0]) if lm_head is not None else 0
        head = f"lm_head {vocab} x {int(lm_head.weight.shape[1])}" + (" (tied to the input embedding)" if tied else "")
        return head, MemoryParts(weights=weights, logits=logits_bytes(options.batch_size, tokens, vocab, dtype),
                                 overhead=overhead)
    features = getattr(getattr(model, "config", None), "hidden_size", None) or 0
    head = f"linear head {features} -> {options.num_labels} on mean-pooled features (trained with every plan)"
    return head, MemoryParts(weights=weights, trainable_state=head_state_bytes(features, options.num_labels),
                             logits=logits_bytes(options.batch_size, 1, options.num_labels, dtype), overhead=overhead)


def measure(prepared: Prepared, unit: Unit) -> Measurement:
    """Run one unit on the prepared device; returns a picklable measurement."""
    return measure_layer(unit) if isinstance(unit, LayerUnit) else measure_site(unit)


def _nonneg(x: float) -> float:
    return max(0.0, x)


def _fill_noise(costs: dict[str, Any], ms_per_flop: dict[str, float]) -> list[str]:
    """Estimate timings lost in noise from FLOPs; returns the names of the fields estimated.

    A candidate that adds work (FLOPs > 0) but whose paired timing difference
    came out <= 0 gets FLOPs x the profile's measured ms per FLOP instead of a
    silent zero. Inference latency is left at 0 only when no inference FLOPs are added.
    """
    estimated = []
    for name, flops_name in (("latency_ms", "inference_flops"), ("train_step_ms", "flops")):
        if costs[name] <= 0 and costs[flops_name] > 0:
            costs[name] = costs[flops_name] * ms_per_flop[flops_name]
            estimated.append(name)
    return estimated


def _site_candidate(c: PlannedCandidate, m: SiteMeasurement, by_key: dict[str, Measurement],
                    checkpointing: bool) -> tuple[dict[str, Any], float]:
    """A site candidate's costs and the bytes of its shared saved input. Activations are measured in place in
    its layer where it has one (`InLayer`), else on its isolated host. Its saved input, when its site shares
    it with others (`Site.input_of`), is a saved input of the profile rather than its own; with checkpointing
    its activations are recomputed."""
    cost = m.costs[c.setting]
    activation, input_bytes = cost.activation_bytes, cost.input_bytes
    if c.in_layer is not None:
        layer_unit, probe = c.in_layer
        activation, input_bytes = by_key[layer_unit].in_layer[probe]  # type: ignore[union-attr]
    shared = input_bytes > 0 and c.site.input_of is not None and not checkpointing
    own = 0.0 if checkpointing else float(activation + (0 if shared else input_bytes))
    return {
        "inference_flops": cost.inference_flops, "flops": cost.inference_flops + cost.backward_flops,
        "latency_ms": _nonneg(cost.latency.median_ms) if cost.latency else 0.0,
        "latency_spread_ms": cost.latency.spread_ms if cost.latency else 0.0,
        "train_step_ms": _nonneg(cost.train_step.median_ms), "train_step_spread_ms": cost.train_step.spread_ms,
        "memory_bytes": float(cost.state_bytes) + own, "activation_bytes": own, "state_bytes": float(cost.state_bytes),
        "saved_input": f"{c.site.input_of}:input" if shared else None,
        "peak_memory_bytes": None if cost.peak_bytes is None else float(cost.peak_bytes),
    }, (float(input_bytes) if shared else 0.0)


def _sequence_candidate(c: PlannedCandidate, prepared: Prepared, layers: list[LayerMeasurement]) -> dict[str, Any]:
    """Prompt of m tokens: the layers' extra cost at tokens + m over tokens, plus the prompt's own gradient."""
    t, m = prepared.tokens, int(c.setting or 0)
    d = [(lm.variants[t + m], lm.variants[t]) for lm in layers]
    fwd = sum(a.forward_flops - b.forward_flops for a, b in d)
    bwd = sum(a.backward_flops - b.backward_flops for a, b in d) + prepared.options.batch_size * c.params
    if prepared.options.checkpointing:
        bwd += fwd  # the longer sequence is recomputed too
        act = sum(a.input_bytes - b.input_bytes for a, b in d)
    else:
        act = sum(a.activation_bytes - b.activation_bytes for a, b in d)
    state = STATE_BYTES_PER_FP32_PARAM * c.params
    return {
        "inference_flops": fwd, "flops": fwd + bwd,
        "latency_ms": _nonneg(sum(a.forward.median_ms - b.forward.median_ms for a, b in d)),
        "latency_spread_ms": sum(a.forward.spread_ms + b.forward.spread_ms for a, b in d),
        "train_step_ms": _nonneg(sum(a.forward.median_ms + a.backward.median_ms - b.forward.median_ms
                                     - b.backward.median_ms for a, b in d)),
        "train_step_spread_ms": sum(a.backward.spread_ms + b.backward.spread_ms for a, b in d),
        "memory_bytes": float(state + act), "activation_bytes": float(act), "state_bytes": float(state),
        "saved_input": None, "peak_memory_bytes": None,
    }, 0.0


def _layer(i: int, path: str, v: VariantCost, checkpointing: bool) -> ProfileLayer:
    """A layer's shared costs: with checkpointing it keeps only its input and recomputes its forward."""
    if v.forward_flops <= 0 or v.backward_flops <= 0:
        raise ProfileError(f"layer {path} measured 0 FLOPs")
    return ProfileLayer(index=i, path=path, backward_flops=v.backward_flops + (v.forward_flops if checkpointing else 0),
                        memory_bytes=v.input_bytes if checkpointing else v.activation_bytes,
                        forward_flops=v.forward_flops, forward_ms=v.forward.median_ms,
                        backward_ms=_nonneg(v.backward.median_ms), forward_spread_ms=v.forward.spread_ms,
                        backward_spread_ms=v.backward.spread_ms)


def assemble(prepared: Prepared, measurements: list[Measurement]) -> Profile:
    """Combine measurements into a Profile; ProfileError if any candidate or layer measured 0 FLOPs."""
    by_key = {m.key: m for m in measurements}
    missing = [t.key for t in prepared.units if t.key not in by_key]
    if missing:
        raise ProfileError(f"{len(missing)} measurement unit(s) missing, e.g. {missing[0]}")
    checkpointing, timed = prepared.options.checkpointing, prepared.run.repeats > 0
    target = prepared.run.target
    timing_kind = "measured" if timed else f"roofline:{target.name}" if target is not None else "none"
    layer_ms: list[LayerMeasurement] = [by_key[k] for k in prepared.layer_units]  # type: ignore[misc]
    base = [lm.variants[prepared.tokens] for lm in layer_ms]
    forward_ms, forward_flops = sum(v.forward.median_ms for v in base), sum(v.forward_flops for v in base)
    train_ms = forward_ms + sum(max(v.backward.median_ms, 0.0) for v in base)
    ms_per_flop = {"inference_flops": forward_ms / max(forward_flops, 1.0),
                   "flops": train_ms / max(forward_flops + sum(v.backward_flops for v in base), 1.0)}
    candidates, inputs = [], {}
    for c in prepared.candidates:
        measured = by_key[c.unit] if c.unit else None
        costs, input_bytes = (_site_candidate(c, measured, by_key, checkpointing) if isinstance(measured, SiteMeasurement)
                              else _sequence_candidate(c, prepared, layer_ms))
        if costs["flops"] <= 0 or c.params <= 0:
            raise ProfileError(f"candidate {c.id} measured {costs['flops']} FLOPs and {c.params} params")
        if costs["saved_input"] is not None:
            known = inputs.setdefault(costs["saved_input"], SavedInput(key=costs["saved_input"], layer=c.layer,
                                                                       bytes=input_bytes))
            known.bytes = max(known.bytes, input_bytes)
        estimated = _fill_noise(costs, ms_per_flop) if timed else []
        candidates.append(ProfileCandidate(id=c.id, method=c.method, group=c.group, layer=c.layer, params=c.params,
                                           site=c.site.path, config=c.config, measurement=c.unit,
                                           estimated=estimated, **costs))
    layers = [_layer(i, path, lm.variants[prepared.tokens], checkpointing)
              for i, (path, lm) in enumerate(zip(prepared.layer_paths, layer_ms, strict=True))]
    # The layers' shared context (position embeddings, masks) is saved once; with checkpointing one layer's
    # activations are live at a time while it is recomputed.
    fixed = max((v.context_bytes for v in base), default=0) + (max((v.activation_bytes for v in base), default=0)
                                                               if checkpointing else 0)
    memory = prepared.memory
    memory = memory.model_copy(update={"fixed": memory.fixed.model_copy(update={"activations": float(fixed)})})
    return Profile(model=prepared.info, device=prepared.run.device, dtype=prepared.run.dtype,
                   batch_size=prepared.options.batch_size, seq_len=prepared.tokens, inputs=prepared.inputs,
                   torch_version=torch.__version__, threads=prepared.run.threads, candidates=candidates, layers=layers,
                   uncounted_ops=prepared.uncounted_ops, saved_inputs=list(inputs.values()), memory=memory, timed=timed,
                   timing_kind=timing_kind, target=target,
                   notes=prepared.notes,
                   options=prepared.options, spec=prepared.spec,
                   timings=ProfileTimings(prepare_s=prepared.prepare_s, num_units=len(prepared.units),
                                          estimated_timings=sum(len(c.estimated) for c in candidates)))
