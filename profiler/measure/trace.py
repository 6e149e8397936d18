"""One forward pass with hooks on every module: call order and the shapes each module sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

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


def _on_meta(model: nn.Module) -> bool:
    return any(p.is_meta for p in model.parameters())


def record(model: nn.Module, args: tuple, kwargs: dict[str, Any]) -> Trace:
    """Run `model(*args, **kwargs)` without grad and record what each submodule saw."""
    trace = Trace()
    handles = []
    readers: dict[int, str] = {}
    held: list[torch.Tensor] = []  # every first input stays alive, so no storage is reused under another key
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

        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    try:
        with torch.no_grad():
            if _on_meta(model):
                # Under a jit trace, transformers skips the checks that read tensor values (mask shortcuts),
                # which the meta device cannot answer.
                call = BoundCall(model, args, kwargs)
                torch.jit.trace(call, call.tensors, check_trace=False, strict=False)
            else:
                model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return trace
