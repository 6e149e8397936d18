"""Tiny models shared by the profiler tests."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_BERT = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
             "intermediate_size": 128, "vocab_size": 500}
TINY_GPT2 = {"model_type": "gpt2", "n_layer": 2, "n_embd": 48, "n_head": 2, "vocab_size": 300, "n_positions": 64}
TINY_LLAMA = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 200}


def real_model(config: dict) -> torch.nn.Module:
    """A CPU model with random weights from a config dict, eval mode, frozen."""
    from transformers import AutoModel

    from profiler.models.build import hf_config

    torch.manual_seed(0)
    return AutoModel.from_config(hf_config(config), attn_implementation="sdpa").eval().requires_grad_(False)


@pytest.fixture(scope="module")
def bert() -> torch.nn.Module:
    return real_model(TINY_BERT)
