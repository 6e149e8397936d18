"""Helpers for the service tests: synthetic stored profiles."""

from __future__ import annotations

from app.store import create_store_engine, profiles, session_factory
from profiler.schema import Profile


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
