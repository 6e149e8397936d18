"""Shapes of recorded call arguments, and random tensors rebuilt from them on any device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten


@dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of one tensor argument (picklable, device-free)."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype."""
        return getattr(torch, self.dtype)

    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for s in self.shape:
            n *= s
        return n


def spec_of(t: torch.Tensor) -> TensorSpec:
    """The spec of a tensor."""
    return TensorSpec(tuple(int(s) for s in t.shape), str(t.dtype).removeprefix("torch."))


def to_specs(tree: Any) -> Any:
    """Replace every tensor in a pytree by its TensorSpec; other leaves are kept."""
    return tree_map(lambda x: spec_of(x) if isinstance(x, torch.Tensor) else x, tree)


def materialize(tree: Any, device: torch.device | str, float_dtype: torch.dtype, seed: int) -> Any:
    """Rebuild a spec tree as tensors: floats random normal (in `float_dtype`; no values on meta), ints zero,
    bools true."""
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def build(x: Any) -> Any:
        if not isinstance(x, TensorSpec):
            return x
        dt = x.torch_dtype
        if dt.is_floating_point:
            if torch.device(device).type == "meta":
                return torch.empty(x.shape, dtype=float_dtype, device=device)
            return torch.randn(x.shape, generator=gen).to(device=device, dtype=float_dtype)
        if dt == torch.bool:
            return torch.ones(x.shape, dtype=dt, device=device)
        return torch.zeros(x.shape, dtype=dt, device=device)

    return tree_map(build, tree, is_leaf=lambda x: isinstance(x, TensorSpec))


def tensor_leaves(tree: Any) -> list[torch.Tensor]:
    """All tensors of a pytree (model outputs included), in order."""
    if hasattr(tree, "to_tuple"):
        tree = tree.to_tuple()
    leaves, _ = tree_flatten(tree)
    return [x for x in leaves if isinstance(x, torch.Tensor)]


class BoundCall(torch.nn.Module):
    """Calls `module(*args, **kwargs)` with the tensors given positionally; returns a tuple of output tensors.

    This lets fvcore's jit tracer (positional tensors only) trace calls that take keyword arguments.
    """

    def __init__(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.module = module
        leaves, self._spec = tree_flatten((args, kwargs))
        self._is_tensor = [isinstance(x, torch.Tensor) for x in leaves]
        self._constants = [None if t else x for x, t in zip(leaves, self._is_tensor, strict=True)]
        self.tensors = tuple(x for x, t in zip(leaves, self._is_tensor, strict=True) if t)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        it = iter(tensors)
        leaves = [next(it) if t else c for t, c in zip(self._is_tensor, self._constants, strict=True)]
        args, kwargs = tree_unflatten(leaves, self._spec)
        return tuple(tensor_leaves(self.module(*args, **kwargs)))
