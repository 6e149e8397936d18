"""Predicted time on a GPU you do not have: a roofline per operation, from published device figures.

Every aten operation a call dispatches is recorded with its FLOPs (the formulas `profiler.measure.flops`
counts with) and the bytes it moves (its tensor inputs and outputs). Its time on a device is the larger of
FLOPs over the device's peak rate for the operation's kind and dtype (tensor cores for matrix products,
attention and convolutions; the vector units otherwise) and bytes over its memory bandwidth, plus a kernel
launch. Operations that only reinterpret memory (views, transposes, detach) launch no kernel and cost
nothing, as do bare allocations. Runs on the meta device: only shapes are needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from profiler.measure.flops import dispatch_counter
from profiler.schema import DeviceSpec

MATRIX = frozenset({"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "convolution", "convolution_backward",
                    "_convolution", "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                    "_scaled_dot_product_flash_attention_backward", "_scaled_dot_product_efficient_attention_backward",
                    "_scaled_dot_product_flash_attention_for_cpu",
                    "_scaled_dot_product_flash_attention_for_cpu_backward"})
"""Operations that run on tensor cores (matrix products, attention, convolutions)."""
ALLOCATIONS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})
"""Operations that only allocate: no kernel, no traffic."""


@dataclass(frozen=True)
class Op:
    """One dispatched operation: its name, FLOPs, bytes moved, dtype, and whether it runs on tensor cores."""

    name: str
    flops: float
    bytes: float
    dtype: str
    matrix: bool


def op_time_ms(op: Op, device: DeviceSpec) -> float:
    """The roofline time of one operation on `device`, in ms: max(FLOPs / peak, bytes / bandwidth) + launch."""
    peaks = device.matrix_tflops if op.matrix else device.vector_tflops
    peak = peaks.get(op.dtype, peaks["float32"]) * 1e12
    bandwidth = device.bandwidth_gbs * 1e9
    return 1e3 * max(op.flops / peak, op.bytes / bandwidth) + device.launch_us * 1e-3


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.formulas = dispatch_counter().flop_registry

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        storages = {t.untyped_storage()._cdata for t in inputs}
        packet = func._overloadpacket
        if packet.__name__ in ALLOCATIONS or (outputs and all(t.untyped_storage()._cdata in storages for t in outputs)):
            return out  # an allocation or a view: no kernel, no traffic
        formula = self.formulas.get(packet)
        flops = float(formula(*args, **kwargs, out_val=out)) if formula is not None else 0.0
        moved = float(sum(t.numel() * t.element_size() for t in (*inputs, *outputs)))
        dtype = str((outputs or inputs)[0].dtype).removeprefix("torch.") if (outputs or inputs) else "float32"
        self.ops.append(Op(packet.__name__, flops, moved, dtype, packet.__name__ in MATRIX))
        return out


def record_ops(fn: Callable[[], object]) -> list[Op]:
    """The operations `fn` dispatches (forward and, if it calls it, backward)."""
    with _Recorder() as recorder:
        fn()
    return recorder.ops


def predicted_ms(fn: Callable[[], object], device: DeviceSpec) -> float:
    """The roofline time of everything `fn` dispatches, on `device`, in ms."""
    return sum(op_time_ms(op, device) for op in record_ops(fn))
