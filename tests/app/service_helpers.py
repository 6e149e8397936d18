"""Helpers for the service tests: synthetic stored profiles, a tiny model directory, a toy dataset."""

from __future__ import annotations

import json
from pathlib import Path

from app.store import create_store_engine, profiles, session_factory
from profiler.schema import Profile
from tests.tiny import TINY_BERT, WORDS, toy_texts

PROFILE_OPTIONS = {"methods": ["lora", "bitfit"], "ranks": [2], "batch_size": 1, "seq_len": 8, "device": "cpu",
                   "repeats": 1, "warmup": 0, "target_modules": [r"encoder\.layer\.1\.attention\..*"]}
"""Profiling options for the tiny BERT: LoRA r2 and BitFit on its last attention block."""


def synthetic_profile(layers: int = 3, ranks: tuple[int, ...] = (4, 8), gains: bool = True) -> Profile:
    """A small profile of LoRA on one projection per layer plus per-layer BitFit."""
    candidates = []
    for layer in range(layers):
        for r in ranks:
            candidates.append({
                "id": f"layer.{layer}.q:lora:r{r}", "method": "lora", "group": f"layer.{layer}.q",
                "layer": layer, "gain": (0.1 * r + 0.01 * layer) if gains else None,
                "params": 64 * r, "flops": 1e6 * r, "latency_ms": 0.1 * r, "memory_bytes": 1e3 * r,
                "site": f"layer.{layer}.q", "config": {"rank": r},
                "inference_flops": 5e5 * r, "train_step_ms": 0.2 * r,
            })
        candidates.append({
            "id": f"layer.{layer}:bitfit", "method": "bitfit", "group": None, "layer": layer,
            "gain": 0.05 if gains else None, "params": 32, "flops": 2e5, "latency_ms": 0.01,
            "memory_bytes": 100.0, "site": f"layer.{layer}", "config": {},
            "inference_flops": 0.0, "train_step_ms": 0.01,
        })
    body = {
        "model": {"name": "synthetic", "total_params": 100_000, "num_layers": layers,
                  "forward_flops": 1e9},
        "device": "cpu", "dtype": "float32", "batch_size": 8, "seq_len": 16,
        "torch_version": "2.13.0", "threads": 2,
        "candidates": candidates,
        "layers": [
            {"index": i, "backward_flops": 1e6, "memory_bytes": 1e4, "forward_flops": 5e5,
             "forward_ms": 0.5, "backward_ms": 1.0}
            for i in range(layers)
        ],
        "options": {},
        "spec": {"name": "synthetic"},
    }
    return Profile.model_validate(body)


def store_profile(db: str, profile: Profile, key: str = "synthetic") -> str:
    """Store a profile directly (as a finished job would) and return its id."""
    engine = create_store_engine(db)
    with session_factory(engine)() as session:
        row = profiles.save(
            session, key, profile.model_dump_json(), profile.model.name,
            profile.model.total_params, len(profile.candidates),
        )
    engine.dispose()
    return row.id


def save_tiny_bert(path: Path) -> None:
    """A random-weight 2-layer BERT (safetensors) with a word-piece tokenizer over WORDS."""
    import torch
    from transformers import BertModel, BertTokenizer

    from profiler.models.build import hf_config

    path.mkdir()
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(path)
    torch.manual_seed(0)
    BertModel(hf_config({**TINY_BERT, "vocab_size": 5 + len(WORDS)})).save_pretrained(path)


def toy_jsonl(n: int) -> str:
    """`n` toy reviews (label: 'good' or 'bad' in the text) as JSONL lines {"text", "label"}."""
    data = toy_texts(n)
    return "\n".join(json.dumps({"text": text, "label": int(y)}) for text, y in zip(data.texts, data.y, strict=True))
