"""Built-in model shapes (random weights, no download): names, families and how to build each one.

`list_models()` only reads this table; building needs torch and transformers (see profiler.models.build).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from profiler.schema import CatalogEntry


@dataclass(frozen=True)
class Shape:
    """A catalog model: a transformers config (model_type + overrides) or a torch-code model ("cnn")."""

    entry: CatalogEntry
    config: dict[str, Any]


def _bert_like(model_type: str, **extra: Any) -> dict[str, Any]:
    return {"model_type": model_type, **extra}


_SHAPES = [
    Shape(CatalogEntry(name="bert-base", family="encoder", description="BERT-base uncased shape: 12 layers, hidden 768.",
                       params=109_482_240), _bert_like("bert")),
    Shape(CatalogEntry(name="bert-tiny", family="encoder", description="A 2-layer BERT, hidden 128 (quick runs).",
                       params=4_385_920),
          _bert_like("bert", num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512)),
    Shape(CatalogEntry(name="roberta-base", family="encoder", description="RoBERTa-base shape: 12 layers, hidden 768.",
                       params=124_645_632),
          _bert_like("roberta", vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                     bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)),
    Shape(CatalogEntry(name="gpt2", family="decoder", description="GPT-2 small shape: 12 layers, hidden 768.",
                       params=124_439_808), {"model_type": "gpt2"}),
    Shape(CatalogEntry(name="llama-7b", family="decoder", description="LLaMA-7B shape: 32 layers, hidden 4096 "
                       "(shape only; profile at a small batch/sequence).", params=6_738_415_616),
          {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
           "max_position_embeddings": 2048, "rms_norm_eps": 1e-6}),
    Shape(CatalogEntry(name="smollm2-135m", family="decoder", description="SmolLM2-135M shape (Llama architecture): "
                       "30 layers, hidden 576, 9 heads, 3 key/value heads, tied embeddings, bf16.", params=134_515_008),
          {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
           "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152, "max_position_embeddings": 8192,
           "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
           "bos_token_id": 1, "eos_token_id": 2}),
    Shape(CatalogEntry(name="vit-base", family="vision", description="ViT-base/16 shape at 224 x 224: 12 layers.",
                       params=86_389_248), {"model_type": "vit"}),
    Shape(CatalogEntry(name="small-cnn", family="cnn", description="4-block CNN with InstanceNorm (no affine), "
                       "3 x 32 x 32 input.", params=103_146), {"model_type": "small-cnn"}),
]
SHAPES = {s.entry.name: s for s in _SHAPES}


def list_models() -> list[CatalogEntry]:
    """The built-in model shapes."""
    return [s.entry for s in _SHAPES]
