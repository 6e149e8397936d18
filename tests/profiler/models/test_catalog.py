"""Each catalog entry's `params` is what its config builds to; SmolLM2-135M's also matches the Llama formula."""

from __future__ import annotations

import pytest

from profiler.models.build import build
from profiler.models.catalog import SHAPES
from profiler.schema import ModelSpec


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_params_equal_the_meta_built_models_count(name: str) -> None:
    model = build(ModelSpec(name=name)).model
    assert sum(p.numel() for p in model.parameters()) == SHAPES[name].entry.params


def test_smollm2_params_match_the_llama_formula() -> None:
    c = SHAPES["smollm2-135m"].config
    hidden, heads, kv_heads = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    kv_width = kv_heads * hidden // heads
    attention = 2 * hidden * hidden + 2 * hidden * kv_width
    layer = attention + 3 * hidden * c["intermediate_size"] + 2 * hidden
    embeddings = c["vocab_size"] * hidden  # tied: the LM head reuses them
    assert c["tie_word_embeddings"] and SHAPES["smollm2-135m"].entry.family == "decoder"
    assert embeddings + c["num_hidden_layers"] * layer + hidden == 134_515_008 == SHAPES["smollm2-135m"].entry.params
