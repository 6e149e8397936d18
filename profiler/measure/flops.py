"""FLOP counting: forward with fvcore (plus handles for ops it misses), backward with FlopCounterMode.

Convention (ARCHITECTURE.md): 2 FLOPs per multiply-add. fvcore's GEMM-type handles count
multiply-adds, so those are doubled; our handles for elementwise ops, activations and norms
count FLOPs per output element directly (1 per element; norms 4, plus 2 with an affine).
Ops without a handle (lookups, masks, comparisons: no arithmetic) count 0 and are reported as uncounted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_backward_flop_count, sdpa_flop_count

from profiler.measure.tensors import BoundCall

# fvcore ops whose counts are multiply-adds (doubled to FLOPs).
MAC_OPS = frozenset({
    "aten::addmm", "aten::bmm", "aten::_convolution", "aten::einsum", "aten::matmul",
    "aten::mm", "aten::linear", "aten::baddbmm", "aten::scaled_dot_product_attention",
})
ELEMENTWISE_OPS = (
    "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::rsub", "aten::mul", "aten::mul_",
    "aten::div", "aten::div_", "aten::addcmul", "aten::neg", "aten::pow", "aten::sqrt", "aten::rsqrt",
    "aten::exp", "aten::log", "aten::sin", "aten::cos", "aten::tanh", "aten::sigmoid", "aten::gelu",
    "aten::silu", "aten::relu", "aten::relu_", "aten::hardtanh", "aten::softmax", "aten::log_softmax",
    "aten::mean", "aten::sum", "aten::cumsum", "aten::erf", "aten::abs", "aten::clamp", "aten::clamp_",
)
NORM_OPS = {"aten::layer_norm": 2, "aten::group_norm": 2, "aten::rms_norm": 2, "aten::instance_norm": 1, "aten::batch_norm": 1}
def _numel(shape: list[int] | None) -> int:
    return math.prod(shape) if shape else 1


def _elementwise(inputs: list[Any], outputs: list[Any]) -> int:
    """1 FLOP per output element (per input element for reductions)."""
    return max(_numel(get_shape(outputs[0])), _numel(get_shape(inputs[0])) if get_shape(inputs[0]) else 0)


def _norm(weight_index: int) -> Any:
    """Handle: 4 FLOPs per element to normalize, plus 2 when an affine weight is given."""

    def handle(inputs: list[Any], outputs: list[Any]) -> int:
        affine = len(inputs) > weight_index and get_shape(inputs[weight_index]) is not None
        return _numel(get_shape(outputs[0])) * (6 if affine else 4)

    return handle


def _sdpa(inputs: list[Any], outputs: list[Any]) -> int:
    """Multiply-adds of QK^T and AV (causal counted as full, like FlopCounterMode)."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = _numel(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def _handles() -> dict[str, Any]:
    handles: dict[str, Any] = {op: _elementwise for op in ELEMENTWISE_OPS}
    handles.update({op: _norm(i) for op, i in NORM_OPS.items()})
    handles["aten::scaled_dot_product_attention"] = _sdpa
    return handles


@dataclass
class FlopCount:
    """FLOPs of one forward call: total, per op, per module path, and ops counted as 0."""

    total: float
    by_op: dict[str, float]
    by_module: dict[str, float]
    uncounted: dict[str, int] = field(default_factory=dict)


def _to_flops(op: str, count: float) -> float:
    return 2.0 * count if f"aten::{op.removeprefix('aten::')}" in MAC_OPS else float(count)


def forward_flops(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any] | None = None) -> FlopCount:
    """Forward FLOPs of `module(*args, **kwargs)` counted with fvcore (2 per multiply-add)."""
    call = BoundCall(module, args, kwargs or {})
    analysis = FlopCountAnalysis(call, call.tensors)
    analysis.set_op_handle(**_handles())
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    by_module_op = analysis.by_module_and_operator()
    by_module = {
        name.removeprefix("module.").removeprefix("module"): sum(_to_flops(op, c) for op, c in ops.items())
        for name, ops in by_module_op.items()
    }
    by_op = {op: _to_flops(op, c) for op, c in by_module_op[""].items()}
    return FlopCount(sum(by_op.values()), by_op, by_module, dict(analysis.unsupported_ops()))


def _shape_numel(shape: Any) -> int:
    """Elements of a shape, or summed over a (nested) tuple of shapes; None counts 0."""
    if shape is None:
        return 0
    if all(isinstance(s, int) for s in shape):
        return math.prod(shape)
    return sum(_shape_numel(s) for s in shape)


def _out_numel(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """1 FLOP per output element (summed over tuple outputs)."""
    return _shape_numel(out_shape)


def _in_numel(x_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """1 FLOP per input element (reductions)."""
    return _shape_numel(x_shape)


def _cpu_sdpa(q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return sdpa_flop_count(q, k, v)


def _cpu_sdpa_backward(grad: Any, q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return sdpa_backward_flop_count(grad, q, k, v)


def _conv_backward(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
    """torch's conv backward formula plus the bias gradient (a sum over grad_output), which it omits."""
    base = flop_registry[torch.ops.aten.convolution_backward](*args, out_val=out_val, **kwargs)
    mask = args[10] if len(args) > 10 else kwargs["output_mask"]
    return base + (args[0].numel() if mask[2] else 0)


_conv_backward._get_raw = True  # type: ignore[attr-defined]  # receives tensors, not shapes

# Per grad_output element: input gradient, weight gradient (multiply-add), bias gradient (add); RMS norms
# have no bias, so their output mask is one shorter.
_NORM_BACKWARD_COST = (2, 2, 1)


def _norm_backward(mask_index: int) -> Any:
    """Formula for a norm's backward: per grad_output element, the cost of each gradient it computes.

    Counting the output elements instead would see only the d-sized weight and
    bias gradients when the input needs no gradient, not the T·d work behind them.
    """

    def count(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        mask = args[mask_index] if len(args) > mask_index else kwargs["output_mask"]
        per_element = sum(cost for cost, wanted in zip(_NORM_BACKWARD_COST, mask, strict=False) if wanted)
        return args[0].numel() * per_element

    count._get_raw = True  # type: ignore[attr-defined]
    return count


def _dispatch_mapping() -> dict[Any, Any]:
    """FlopCounterMode formulas keyed by aten op packet (FlopCounterMode looks ops up by packet)."""
    aten = torch.ops.aten
    mapping: dict[Any, Any] = {
        aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward,
        aten.convolution_backward: _conv_backward,
        aten.native_layer_norm_backward: _norm_backward(7),
        aten.native_group_norm_backward: _norm_backward(9),
        aten.native_batch_norm_backward: _norm_backward(9),
    }
    if hasattr(aten, "_fused_rms_norm_backward"):
        mapping[aten._fused_rms_norm_backward] = _norm_backward(5)
    for name in ("sum", "mean"):
        mapping[getattr(aten, name)] = _in_numel
    for name in (
        "add", "sub", "mul", "div", "neg", "gelu", "gelu_backward", "silu", "silu_backward", "tanh", "tanh_backward",
        "sigmoid", "sigmoid_backward", "relu", "threshold_backward", "_softmax", "_softmax_backward_data", "pow",
        "rsqrt", "addcmul", "native_layer_norm", "native_group_norm", "native_batch_norm", "_native_batch_norm_legit",
        "_native_batch_norm_legit_no_training", "_fused_rms_norm",
    ):
        op = getattr(aten, name, None)
        if op is not None:
            mapping[op] = _out_numel
    return mapping


def dispatch_counter(elementwise: bool = True) -> FlopCounterMode:
    """A FlopCounterMode that also counts CPU SDPA and, with `elementwise`, elementwise ops and norms."""
    mapping = _dispatch_mapping()
    if not elementwise:
        aten = torch.ops.aten
        keep = {aten._scaled_dot_product_flash_attention_for_cpu, aten._scaled_dot_product_flash_attention_for_cpu_backward}
        mapping = {k: v for k, v in mapping.items() if k in keep}
    return FlopCounterMode(display=False, custom_mapping=mapping)
