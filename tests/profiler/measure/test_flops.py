"""fvcore-based counts against closed forms and against torch's FlopCounterMode."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from profiler.measure.flops import MAC_OPS, dispatch_counter, forward_flops
from profiler.methods.adapter import Bottleneck
from profiler.methods.lora import LoraLinear
from tests.tiny import TINY_BERT, real_model


def test_lora_forward_flops_equal_closed_form():
    base = nn.Linear(48, 80)
    lora = LoraLinear(48, 80, rank=8, alpha=16, dropout=0.0)
    base.register_forward_hook(lambda m, a, out: lora.update(a[0], out))
    base.add_module("lora", lora)
    x = torch.randn(3, 7, 48)
    added = forward_flops(base, (x,)).total - forward_flops(nn.Linear(48, 80), (x,)).total
    assert added == 2 * 21 * 8 * (48 + 80)
    with FlopCounterMode(display=False) as ref:
        base(x)
    assert ref.get_total_flops() == 2 * 21 * 48 * 80 + 2 * 21 * 8 * (48 + 80)


def test_adapter_and_sdpa_closed_forms():
    x = torch.randn(2, 5, 32)
    # 4·T·d·b for the two matmuls, T·b for GELU, T·d for the residual add.
    assert forward_flops(Bottleneck(32, 8), (x,)).total == 4 * 10 * 32 * 8 + 10 * 8 + 10 * 32

    class Attn(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(2, 3, 7, 16), torch.randn(2, 3, 9, 16), torch.randn(2, 3, 9, 16)
    assert forward_flops(Attn(), (q, k, v)).total == 4 * 2 * 3 * 7 * 9 * 16


def test_whole_model_gemms_match_flop_counter_mode_and_nothing_arithmetic_is_uncounted():
    model = real_model(TINY_BERT)
    ids = torch.arange(64).view(4, 16)
    count = forward_flops(model, (), {"input_ids": ids})
    gemm = sum(v for op, v in count.by_op.items() if f"aten::{op}" in MAC_OPS)
    with dispatch_counter(elementwise=False) as ref:
        model(input_ids=ids)
    assert gemm == ref.get_total_flops()
    assert set(count.uncounted) <= {"aten::embedding"}
    assert count.total > gemm  # elementwise ops, norms and activations are counted too
    with dispatch_counter() as full:
        model(input_ids=ids)
    assert abs(full.get_total_flops() - count.total) / count.total < 0.05
