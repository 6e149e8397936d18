"""The fixed parts of training memory, paid by any plan: frozen weights, logits, the task head, overhead.

Counted from the built model's parameters and the profiled shape, in bytes:

* weights: every parameter in the profile's dtype, but linear weights inside layers at the quantized size
  with `quantization` (what bitsandbytes stores: int8 is 1 byte a weight plus a float32 scale per output
  row; NF4 with double quantization is 4 bits a weight, an 8-bit absmax per block of 64 and a float32
  scale per 256 blocks). The lm_head and embeddings stay in the dtype, as bitsandbytes leaves them.
* logits (causal LM): batch x tokens x vocabulary in the dtype, plus the loss's float32 copy (log-softmax
  output kept for backward); a classification head's logits are batch x labels the same way.
* trainable state of a classification head: its float32 weights, gradients and AdamW moments.
* overhead: on CUDA, OVERHEAD_CUDA_BYTES for the CUDA context and cuBLAS workspace (nvidia-smi sees them,
  `torch.cuda.max_memory_allocated` does not); nothing on CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from profiler.schema import MemoryParts, Profile

OVERHEAD_CUDA_BYTES = 512 * 2**20
# Bytes a weight, and per-output-row bytes, of a quantized linear.
QUANTIZED = {"int8": (1.0, 4.0), "nf4": (0.5 + 1 / 64 + 4 / (64 * 256), 0.0)}
STATE_BYTES_PER_FP32_PARAM = 16  # parameter, gradient, two AdamW moments, float32


def element_bytes(dtype: str) -> int:
    """Bytes of one element of `dtype` ("float32", "bfloat16", ...)."""
    return torch.empty((), dtype=getattr(torch, dtype)).element_size()


def _quantizable(model: nn.Module, layer_paths: list[str]) -> list[nn.Module]:
    """The linear modules (Linear, transformers' Conv1D) inside the layers: what bitsandbytes replaces."""
    out = []
    for path in layer_paths:
        for module in model.get_submodule(path).modules():
            if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":
                out.append(module)
    return out


def weight_bytes(model: nn.Module, layer_paths: list[str], dtype: str, quantization: str) -> float:
    """Bytes of every (distinct) parameter of `model` stored in `dtype`, linears in layers at `quantization`."""
    total = float(sum(p.numel() for p in model.parameters()) * element_bytes(dtype))
    if quantization == "none":
        return total
    per_weight, per_row = QUANTIZED[quantization]
    for module in _quantizable(model, layer_paths):
        weight = module.weight
        rows = weight.shape[0] if isinstance(module, nn.Linear) else weight.shape[1]
        total += weight.numel() * (per_weight - element_bytes(dtype)) + rows * per_row
    return total


def logits_bytes(batch: int, tokens: int, classes: int, dtype: str) -> float:
    """Bytes of the logits (batch x tokens x classes in `dtype`) and the loss's float32 copy of them."""
    return float(batch * tokens * classes * (element_bytes(dtype) + 4))


def overhead_bytes(device: str) -> float:
    """The documented CUDA context and workspace reserve on a CUDA device; 0 elsewhere."""
    return float(OVERHEAD_CUDA_BYTES) if device == "cuda" else 0.0


def head_state_bytes(features: int, labels: int) -> float:
    """Training state of a float32 linear head of `features` -> `labels` (weights, bias, grads, AdamW moments)."""
    return float(STATE_BYTES_PER_FP32_PARAM * (features * labels + labels))


def full_finetuning_memory(profile: Profile) -> MemoryParts:
    """Memory of training every weight instead (AdamW, moments and gradients in the weights' dtype, as torch
    keeps them): the weights, 3 x their bytes of state, every layer's activations, the logits, the overhead."""
    fixed = profile.memory.fixed
    params = profile.model.total_params * element_bytes(profile.memory.dtype)
    return fixed.model_copy(update={
        "weights": float(params), "trainable_state": fixed.trainable_state + 3.0 * params,
        "activations": fixed.activations + sum(la.memory_bytes for la in profile.layers),
    })
