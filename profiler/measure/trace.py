"""One forward pass with hooks on every module: call order and the shapes each module sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from profiler.measure.memory import storage_key
from profiler.measure.tensors import BoundCall, TensorSpec, tensor_leaves, to_specs


@dataclass
class Call:
    """What one module saw on its first call: positional and keyword argument specs, first in/out tensor, and
    `input_of`: the path of the first module (in call order) whose first input was this same tensor (modules
    reading one tensor, like q, k and v, share it)."""

    order: int
    args: Any
    kwargs: Any
    first_in: TensorSpec | None
    first_out: TensorSpec | None = None
    input_of: str | None = None


@dataclass
class Trace:
    """Module path -> first Call, for every module that ran."""

    calls: dict[str, Call] = field(default_factory=dict)
    unreached: list[str] = field(default_factory=list)
    """Modules whose output has no gradient path to the model's output (`record(..., reach=True)`)."""


def _traced(model: nn.Module) -> bool:
    """Whether a forward of `model` runs under a jit trace: a transformers model on the meta device."""
    return hasattr(model, "config") and any(p.is_meta for p in model.parameters())


def record(model: nn.Module, args: tuple, kwargs: dict[str, Any], reach: bool = False) -> Trace:
    """Run `model(*args, **kwargs)` and record what each submodule saw (without grad).

    With `reach`, the same run also finds the modules whose output has no gradient path to the model's first
    output (its last hidden state, or its logits), kept in `Trace.unreached`: training anything there cannot
    change what the task head sees. The input embedding's output (or every float input) is made to require
    grad, and autograd is asked for the gradient of the first output's sum with respect to each module's output.
    """
    trace = Trace()
    handles = []
    readers: dict[int, str] = {}
    held: list[torch.Tensor] = []  # every first input stays alive, so no storage is reused under another key
    outputs: dict[str, torch.Tensor] = {}
    for path, module in model.named_modules():
        def pre(m: nn.Module, a: tuple, kw: dict[str, Any], path: str = path) -> None:
            if path not in trace.calls:
                first = tensor_leaves((a, kw))
                input_of = None
                if first:
                    held.append(first[0])
                    input_of = readers.setdefault(storage_key(first[0]), path)
                trace.calls[path] = Call(len(trace.calls), to_specs(a), to_specs(kw), to_specs(first[0]) if first else None,
                                         input_of=input_of)

        def post(m: nn.Module, a: tuple, kw: dict[str, Any], out: Any, path: str = path) -> None:
            call = trace.calls[path]
            if call.first_out is None:
                outs = tensor_leaves(out)
                call.first_out = to_specs(outs[0]) if outs else None
                if outs and path:
                    outputs[path] = outs[0]

        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    if reach:
        getter = getattr(model, "get_input_embeddings", None)
        embedding = getter() if callable(getter) else None
        if isinstance(embedding, nn.Embedding):
            handles.insert(0, embedding.register_forward_hook(lambda m, a, out: out.requires_grad_()))
        else:
            args, kwargs = _requiring_grad(args, kwargs)
    try:
        with torch.set_grad_enabled(reach):
            first = run(model, args, kwargs)[0]
            if reach:
                trace.unreached = _unreached(first, outputs)
    finally:
        for h in handles:
            h.remove()
    return trace


def _unreached(first: torch.Tensor, outputs: dict[str, torch.Tensor]) -> list[str]:
    """The paths whose output `first` does not depend on (through differentiable operations)."""
    wanted = [(path, out) for path, out in outputs.items() if out.requires_grad]
    grads = torch.autograd.grad(first.sum(), [out for _, out in wanted], allow_unused=True) if wanted else []
    reached = {path for (path, _), grad in zip(wanted, grads, strict=True) if grad is not None}
    return [path for path in outputs if path not in reached]


def run(model: nn.Module, args: tuple, kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The output tensors of `model(*args, **kwargs)`. A transformers model on the meta device runs under a jit
    trace, where transformers skips the checks that read tensor values (mask shortcuts), which meta cannot
    answer."""
    if not _traced(model):
        return tensor_leaves(model(*args, **kwargs))
    call = BoundCall(model, args, kwargs)
    outputs: list[torch.Tensor] = []
    handle = call.register_forward_hook(lambda m, a, out: outputs.extend(out))
    try:
        torch.jit.trace(call, call.tensors, check_trace=False, strict=False)
    finally:
        handle.remove()
    return outputs


def _requiring_grad(args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """The call's arguments with every float tensor made to require grad."""
    leaves, spec = tree_flatten((args, kwargs))
    leaves = [x.detach().requires_grad_() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
              for x in leaves]
    return tree_unflatten(leaves, spec)
