"""Run one measurement unit on its device: FLOPs, paired timings and memory of isolated modules."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from profiler.errors import ProfileError
from profiler.measure.flops import dispatch_counter, forward_flops
from profiler.measure.memory import (
    cuda_peak_bytes,
    saved_storages,
    storage_key,
    training_state_bytes,
)
from profiler.measure.roofline import predicted_ms
from profiler.measure.tensors import materialize, tensor_leaves
from profiler.measure.timing import difference, interleaved, summarize
from profiler.measure.units import (
    LayerMeasurement,
    LayerUnit,
    RunSettings,
    SettingCost,
    SiteMeasurement,
    SiteUnit,
    VariantCost,
)
from profiler.methods.registry import get_method


def _setup(run: RunSettings) -> tuple[torch.device, torch.dtype]:
    torch.set_num_threads(run.threads)
    torch.manual_seed(run.seed)
    return torch.device(run.device), getattr(torch, run.dtype)


def materialize_module(meta: nn.Module, device: torch.device, dtype: torch.dtype, seed: int) -> nn.Module:
    """A frozen, eval-mode copy of a (meta) module on `device` in `dtype` with random N(0, 0.02) weights (no values
    on the meta device: shapes are all it has)."""
    module = copy.deepcopy(meta).to_empty(device=device)
    if device.type == "meta":
        return module.to(dtype=dtype).requires_grad_(False).eval()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=gen) * 0.02 + (1.0 if t.dim() <= 1 else 0.0))
            else:
                t.zero_()
    return module.to(dtype=dtype).requires_grad_(False).eval()


def _sharing_copy(module: nn.Module) -> nn.Module:
    """A copy of the module's structure that shares its parameters and buffers."""
    memo: dict[int, Any] = {id(t): t for t in list(module.parameters()) + list(module.buffers())}
    return copy.deepcopy(module, memo)


def _first(out: Any) -> torch.Tensor:
    return tensor_leaves(out)[0]


def _backward_flops(fn: Callable[[], torch.Tensor], grad: torch.Tensor) -> float:
    out = fn()
    with dispatch_counter() as counter:
        out.backward(grad)
    return float(counter.get_total_flops())


def _clear_grads(tensors: list[torch.Tensor]) -> None:
    for t in tensors:
        t.grad = None


def _samples(fns: list[Callable[[], object]], device: torch.device, run: RunSettings) -> list[list[float]]:
    """Times of each fn, ms: measured (interleaved repeats), the roofline prediction for `run.target`, or none."""
    if run.target is not None:
        return [[predicted_ms(fn, run.target)] for fn in fns]
    return interleaved(fns, device, run.repeats, run.warmup)


def _split_saved(saved: dict[int, int], x: torch.Tensor) -> dict[str, int]:
    """{"input_bytes": bytes of `x` if it is among the saved storages, "activation_bytes": the rest}."""
    input_bytes = saved.pop(storage_key(x), 0)
    return {"input_bytes": input_bytes, "activation_bytes": sum(saved.values())}


def measure_site(unit: SiteUnit) -> SiteMeasurement:
    """Costs each setting of `unit.method` adds to an isolated host; timings paired with the bare host."""
    device, dtype = _setup(unit.run)
    method = get_method(unit.method)
    base = materialize_module(unit.host, device, dtype, unit.run.seed)
    x = materialize(unit.input, device, dtype, unit.run.seed)
    site = replace(unit.site, path="")
    base_flops = forward_flops(base, (x,)).total
    with torch.no_grad():
        grad = torch.randn_like(_first(base(x)))

    def infer(module: nn.Module) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return module(x)
        return run

    fns: list[Callable[[], object]] = [infer(base)]
    slots: list[tuple[int | None, int | None, int]] = []
    partial: dict[int | None, dict[str, Any]] = {}
    for setting in unit.settings:
        module = _sharing_copy(base)
        attachment = method.attach(module, site, setting)
        module.to(device=device)  # the base is in `dtype` already; adapters keep their own (float32 beside half)
        params = attachment.parameters()
        added = forward_flops(module, (x,)).total - base_flops

        def train(module: nn.Module = module, params: list[torch.Tensor] = params) -> None:
            _first(module(x)).backward(grad)
            _clear_grads(params)

        partial[setting] = {
            "inference_flops": added,
            "backward_flops": _backward_flops(lambda module=module: _first(module(x)), grad),
            **_split_saved(saved_storages(lambda module=module: module(x), module.parameters()), x),
            "state_bytes": training_state_bytes(params, attachment.created),
            "peak_bytes": cuda_peak_bytes(train, device),
        }
        _clear_grads(params)
        infer_slot = None
        if added > 0:
            infer_slot = len(fns)
            fns.append(infer(module))
        slots.append((setting, infer_slot, len(fns)))
        fns.append(train)
    samples = _samples(fns, device, unit.run)
    costs = {}
    for setting, infer_slot, train_slot in slots:
        p = partial[setting]
        costs[setting] = SettingCost(
            inference_flops=p["inference_flops"], backward_flops=p["backward_flops"],
            latency=None if infer_slot is None or not samples[0] else difference(samples[infer_slot], samples[0]),
            train_step=difference(samples[train_slot], samples[0]),
            activation_bytes=p["activation_bytes"], input_bytes=p["input_bytes"], state_bytes=p["state_bytes"],
            peak_bytes=p["peak_bytes"],
        )
    return SiteMeasurement(unit.key, costs)


def _with_grad_input(args: Any, kwargs: Any) -> tuple[Any, Any, torch.Tensor]:
    """Mark the first floating tensor argument (the hidden states) as requiring grad."""
    leaves, spec = tree_flatten((args, kwargs))
    index = next((i for i, t in enumerate(leaves) if isinstance(t, torch.Tensor) and t.is_floating_point()), None)
    if index is None:
        raise ProfileError("a layer takes no floating-point input (hidden states) to measure its backward through")
    leaves[index] = leaves[index].detach().requires_grad_(True)
    a, kw = tree_unflatten(leaves, spec)
    return a, kw, leaves[index]


def measure_layer(unit: LayerUnit) -> LayerMeasurement:
    """A frozen layer's forward and backward (input grads only) FLOPs, times and saved activations per variant."""
    device, dtype = _setup(unit.run)
    layer = materialize_module(unit.host, device, dtype, unit.run.seed)
    fns: list[Callable[[], object]] = []
    partial = []
    for tokens, arg_specs, kwarg_specs in unit.variants:
        args, kwargs, hidden = _with_grad_input(*materialize((arg_specs, kwarg_specs), device, dtype, unit.run.seed))
        with torch.no_grad():
            grad = torch.randn_like(_first(layer(*args, **kwargs)))

        def call(args: Any = args, kwargs: Any = kwargs) -> torch.Tensor:
            return _first(layer(*args, **kwargs))

        def forward(call: Callable[[], torch.Tensor] = call) -> None:
            with torch.no_grad():
                call()

        def train(call: Callable[[], torch.Tensor] = call, grad: torch.Tensor = grad, hidden: torch.Tensor = hidden) -> None:
            call().backward(grad)
            hidden.grad = None

        saved = saved_storages(call, layer.parameters())
        context = {storage_key(x) for x in tensor_leaves((args, kwargs)) if x is not hidden}
        shared = sum(saved.pop(key) for key in context & saved.keys())
        partial.append((tokens, forward_flops(layer, args, kwargs).total, _backward_flops(call, grad),
                        sum(saved.values()), hidden.untyped_storage().nbytes(), shared))
        hidden.grad = None
        fns += [forward, train]
    samples = _samples(fns, device, unit.run)
    variants = {}
    for i, (tokens, fwd_flops, bwd_flops, act, input_bytes, shared) in enumerate(partial):
        fwd, trn = samples[2 * i], samples[2 * i + 1]
        variants[tokens] = VariantCost(fwd_flops, bwd_flops, summarize(fwd), difference(trn, fwd), act, input_bytes,
                                       shared)
    return LayerMeasurement(unit.key, variants, _in_layer(layer, unit, device, dtype))


def _reading(module: nn.Module, paths: set[str]) -> tuple[dict[str, int], Callable[[], None]]:
    """Hooks recording the storage key of the first input each module at `paths` reads; (records, undo).

    The inputs are held until `undo`, so no storage freed during the forward is reused under a recorded key.
    """
    read: dict[str, int] = {}
    held: list[torch.Tensor] = []

    def hook(path: str) -> Callable[[nn.Module, tuple], None]:
        def record(m: nn.Module, args: tuple) -> None:
            if args and path not in read:
                held.append(args[0])
                read[path] = storage_key(args[0])
        return record

    handles = [module.get_submodule(path).register_forward_pre_hook(hook(path)) for path in paths]

    def undo() -> None:
        for handle in handles:
            handle.remove()
        held.clear()

    return read, undo


def _in_layer(layer: nn.Module, unit: LayerUnit, device: torch.device, dtype: torch.dtype) -> dict[str, tuple[int, int]]:
    """What each adapter of `unit.in_layer` adds to the layer's saved activations at its first call variant
    (hidden states requiring grad: backward goes through the layer), and its input if it newly saves it.

    Measured in place, since what an adapter saves can be what the frozen layer saves already (LoRA on an
    attention output keeps the tensor SDPA keeps; unfreezing a norm's affine keeps the input the norm keeps).
    Storages of the layer's inputs (hidden states, position embeddings, masks) are left out, as in the layer's
    own count.
    """
    if not unit.in_layer:
        return {}
    _, arg_specs, kwarg_specs = unit.variants[0]
    args, kwargs, hidden = _with_grad_input(*materialize((arg_specs, kwarg_specs), device, dtype, unit.run.seed))
    context = {storage_key(x) for x in tensor_leaves((args, kwargs))}
    read, undo = _reading(layer, {probe.site.path for probe in unit.in_layer})
    frozen_saved = saved_storages(lambda: layer(*args, **kwargs), layer.parameters())
    kept = {path for path, key in read.items() if key in frozen_saved}  # sites whose input the layer keeps anyway
    undo()
    frozen = sum(v for k, v in frozen_saved.items() if k not in context)
    out = {}
    for probe in unit.in_layer:
        module = _sharing_copy(layer)
        attachment = get_method(probe.method).attach(module, probe.site, probe.setting)
        read, undo = _reading(module, {probe.site.path})
        saved = saved_storages(lambda module=module: module(*args, **kwargs), module.parameters())
        key = read.get(probe.site.path)
        newly = key is not None and probe.site.input_of is not None and probe.site.path not in kept
        input_bytes = saved.get(key, 0) if newly else 0
        undo()
        attachment.detach()
        added = sum(v for k, v in saved.items() if k not in context) - frozen
        out[probe.key] = (max(added - input_bytes, 0), input_bytes)
    hidden.grad = None
    return out
