"""Memory accounting: activations saved for backward, and training-state bytes of trainable parameters."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

# Trainable parameter bytes multiply: the parameter, its gradient, Adam's two moment buffers.
NEW_PARAM_FACTOR = 4
EXISTING_PARAM_FACTOR = 3


def saved_activation_bytes(fn: Callable[[], object], exclude: Iterable[torch.Tensor]) -> int:
    """Bytes of distinct tensors autograd saves for backward while `fn` runs, excluding `exclude` (weights)."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in skip:
            seen[ptr] = max(seen.get(ptr, 0), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


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
