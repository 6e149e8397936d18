"""Memory accounting: activations saved for backward (each storage once), training-state bytes of trainable
parameters, the CUDA peak."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

# Trainable parameter bytes multiply: the parameter, its gradient, AdamW's two moment buffers (torch keeps
# them in the parameter's dtype). A parameter that already existed is counted with the frozen weights.
NEW_PARAM_FACTOR = 4
EXISTING_PARAM_FACTOR = 3


def storage_key(t: torch.Tensor) -> int:
    """The identity of a tensor's storage (views share it), on any device, the meta device included."""
    return t.untyped_storage()._cdata


class _FusedAttention(torch.autograd.Function):
    """On the meta device: what a fused SDPA kernel (flash attention, as on CUDA and on CPU) saves for backward,
    q, k, v, the output and a float32 log-sum-exp per query, where meta itself can only run the math kernel,
    which saves the attention probabilities too. Used for saved bytes only: its backward is never run."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = q.new_empty((*q.shape[:-1], v.shape[-1]))
        ctx.save_for_backward(q, k, v, out, q.new_empty(q.shape[:-1], dtype=torch.float32))
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> None:  # pragma: no cover - never differentiated
        raise RuntimeError("the meta stand-in of fused attention is not differentiable")


class _FusedAttentionOnMeta(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func is F.scaled_dot_product_attention and args and args[0].is_meta:
            return _FusedAttention.apply(*args[:3])
        return func(*args, **(kwargs or {}))


def saved_storages(fn: Callable[[], object], exclude: Iterable[torch.Tensor]) -> dict[int, int]:
    """Storage key -> bytes of every distinct storage autograd saves for backward while `fn` runs, but those of
    `exclude` (weights: a linear saves its weight for the input gradient). On the meta device SDPA counts as
    the fused kernel real devices run (`_FusedAttention`)."""
    skip = {storage_key(t) for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = storage_key(t)
        if key not in skip:
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _FusedAttentionOnMeta():
        fn()
    return seen


def saved_activation_bytes(fn: Callable[[], object], exclude: Iterable[torch.Tensor]) -> int:
    """Bytes of distinct tensors autograd saves for backward while `fn` runs, excluding `exclude` (weights)."""
    return sum(saved_storages(fn, exclude).values())


def training_state_bytes(params: Iterable[torch.Tensor], created: bool) -> int:
    """Bytes of param + grad + Adam state for trainable params (no param bytes if they already existed)."""
    factor = NEW_PARAM_FACTOR if created else EXISTING_PARAM_FACTOR
    return factor * sum(p.numel() * p.element_size() for p in params)


def cuda_peak_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """Peak CUDA bytes allocated above the starting level while `fn` runs; None off CUDA."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    start = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - start)
