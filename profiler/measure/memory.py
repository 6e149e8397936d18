"""Memory accounting: activations saved for backward (each storage once), training-state bytes of trainable
parameters, the CUDA peak."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

# Trainable parameter bytes multiply: the parameter, its gradient, AdamW's two moment buffers (torch keeps
# them in the parameter's dtype). A parameter that already existed is counted with the frozen weights.
NEW_PARAM_FACTOR = 4
EXISTING_PARAM_FACTOR = 3


def storage_key(t: torch.Tensor) -> int:
    """The identity of a tensor's storage (views share it), on any device, the meta device included."""
    return t.untyped_storage()._cdata


def saved_storages(fn: Callable[[], object], exclude: Iterable[torch.Tensor]) -> dict[int, int]:
    """Storage key -> bytes of every distinct storage autograd saves for backward while `fn` runs, but those of
    `exclude` (weights: a linear saves its weight for the input gradient)."""
    skip = {storage_key(t) for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = storage_key(t)
        if key not in skip:
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
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
