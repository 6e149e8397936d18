"""module_kind: the kind of module a candidate's site is, across naming schemes."""

from __future__ import annotations

import pytest

from app.planning.module_kinds import KINDS, kind_order, module_kind


@pytest.mark.parametrize(("site", "method", "kind"), [
    ("encoder.layer.3.attention.self.query", "lora", "q"),
    ("encoder.layer.3.attention.self.key", "lora", "k"),
    ("encoder.layer.3.attention.self.value", "ia3", "v"),
    ("encoder.layer.3.attention.output.dense", "lora", "o"),
    ("encoder.layer.3.intermediate.dense", "lora", "up"),
    ("encoder.layer.3.output.dense", "adapter", "down"),
    ("model.layers.3.self_attn.q_proj", "lora", "q"),
    ("model.layers.3.self_attn.o_proj", "lora", "o"),
    ("model.layers.3.mlp.gate_proj", "lora", "gate"),
    ("model.layers.3.mlp.up_proj", "lora", "up"),
    ("model.layers.3.mlp.down_proj", "lora", "down"),
    ("h.0.attn.c_proj", "lora", "o"),
    ("h.0.mlp.c_fc", "lora", "up"),
    ("h.0.mlp.c_proj", "lora", "down"),
    ("transformer.layer.1.ffn.lin2", "lora", "down"),
    ("encoder.layer.3.output.LayerNorm", "norm_affine", "norm"),
    ("model.layers.3.post_attention_layernorm", "norm_affine", "norm"),
    ("model.norm", "norm_affine", "norm"),
    ("encoder.layer.3.attention.self.query", "bitfit", "bias"),
    ("embeddings.word_embeddings", "prompt_tuning", "prompt"),
    ("pooler.dense", "lora", "dense"),
    ("h.0.attn.c_attn", "lora", "c_attn"),
    ("layers.3.attn", "adapter", "attn"),
])
def test_kinds(site: str, method: str, kind: str) -> None:
    assert module_kind(site, method) == kind


def test_known_kinds_come_first_in_order() -> None:
    assert sorted(["dense", "norm", "q", "attn", "down"], key=kind_order) == ["q", "down", "norm", "attn", "dense"]
    assert KINDS[:4] == ("q", "k", "v", "o")
