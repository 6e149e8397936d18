"""Synthetic planning problems shaped like LLaMA-7B, for demos, tests and benchmarks.

Costs follow the cost conventions (2 FLOPs per multiply-add, T tokens a step);
gains are a seeded, plausible shape (concave in rank, varying by module and
layer), not measurements.
"""

from __future__ import annotations

import math
import random

from solver.problem import Problem

HIDDEN = 4096
FFN = 11008
LAYERS = 32
TOTAL_PARAMS = 6_738_415_616
# (module, d_in, d_out) of one decoder layer.
MODULES = [
    ("q_proj", HIDDEN, HIDDEN),
    ("k_proj", HIDDEN, HIDDEN),
    ("v_proj", HIDDEN, HIDDEN),
    ("o_proj", HIDDEN, HIDDEN),
    ("gate_proj", HIDDEN, FFN),
    ("up_proj", HIDDEN, FFN),
    ("down_proj", FFN, HIDDEN),
]
NORMS = ["input_layernorm", "post_attention_layernorm"]


# Benchmark sizes: candidates -> (layers kept, LoRA ranks, adapter bottlenecks).
# Every size also has two norm-affine candidates a layer and five prompt lengths.
SIZES: dict[int, tuple[int, list[int], list[int]]] = {
    50: (1, [4, 8, 16, 32, 64], [16, 32, 64, 128]),
    200: (4, [4, 8, 16, 32, 64, 128], [16, 32, 64, 128]),
    1200: (32, [4, 8, 16, 32, 64], []),
    3000: (32, [2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128], [8, 16, 32, 64, 128, 256, 512, 1024]),
}
PROMPT_LENGTHS = [5, 10, 20, 50, 100]


def llama_like_problem(
    size: int = 1200,
    *,
    seed: int = 0,
    objective: str = "gain",
    params_budget: float = 0.001,
    flops_budget: float = 1.5,
    min_gain_fraction: float = 0.0,
    tokens: int = 512,
) -> Problem:
    """Return a LLaMA-7B-shaped problem of about `size` candidates (a key of SIZES).

    Budgets: `params_budget` is a fraction of the (kept layers') parameters;
    `flops_budget` a multiple of the kept layers' forward FLOPs per step.
    `min_gain_fraction` of the summed best gains of the layers sets min_gain.
    Small sizes keep only the top layers.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}")
    layers, ranks, bottlenecks = SIZES[size]
    prompts = PROMPT_LENGTHS
    rng = random.Random(seed)
    layer_forward = 2 * tokens * sum(i * o for _, i, o in MODULES) + 4 * tokens * tokens * HIDDEN
    candidates: list[dict] = []
    first = LAYERS - layers
    for layer in range(first, LAYERS):
        depth = 0.5 + layer / LAYERS
        for name, d_in, d_out in MODULES:
            weight = rng.uniform(0.2, 1.0) * depth
            r0 = rng.uniform(8, 48)
            site = f"layers.{layer}.{name}"
            for r in ranks:
                forward = 2 * tokens * r * (d_in + d_out)
                candidates.append(
                    dict(
                        id=f"{site}:lora:r{r}", method="lora", group=f"{site}:lora", layer=layer,
                        gain=round(weight * (1 - math.exp(-r / r0)), 6),
                        params=r * (d_in + d_out), flops=3 * forward,
                        latency_ms=0.02 + forward / 4e11, memory_bytes=16 * r * (d_in + d_out) + 2 * tokens * r,
                        site=site, config={"rank": r},
                    )
                )
        for name in NORMS:
            site = f"layers.{layer}.{name}"
            candidates.append(
                dict(
                    id=f"{site}:norm_affine", method="norm_affine", layer=layer,
                    gain=round(rng.uniform(0.01, 0.06) * depth, 6), params=HIDDEN,
                    flops=3 * 2 * tokens * HIDDEN, latency_ms=0.0, memory_bytes=16 * HIDDEN, site=site,
                )
            )
        for where in ("attn", "mlp"):
            site = f"layers.{layer}.{where}"
            weight, b0 = rng.uniform(0.2, 0.9) * depth, rng.uniform(16, 96)
            for b in bottlenecks:
                forward = 2 * tokens * 2 * HIDDEN * b
                candidates.append(
                    dict(
                        id=f"{site}:adapter:b{b}", method="adapter", group=f"{site}:adapter", layer=layer,
                        gain=round(weight * (1 - math.exp(-b / b0)), 6),
                        params=2 * HIDDEN * b + b + HIDDEN, flops=3 * forward,
                        latency_ms=0.05 + forward / 2e11, memory_bytes=16 * (2 * HIDDEN * b) + 2 * tokens * b,
                        site=site, config={"bottleneck": b},
                    )
                )
    for m in prompts:
        candidates.append(
            dict(
                id=f"embed_tokens:prompt_tuning:m{m}", method="prompt_tuning", group="prompt_tuning",
                layer=first, gain=round(0.8 * (1 - math.exp(-m / 30)), 6), params=m * HIDDEN,
                flops=3 * layers * layer_forward * m / tokens, latency_ms=0.1 * m,
                memory_bytes=16 * m * HIDDEN, site="embed_tokens", config={"length": m},
            )
        )
    layer_costs = [
        dict(index=layer, backward_flops=layer_forward, memory_bytes=4 * tokens * HIDDEN * 12)
        for layer in range(first, LAYERS)
    ]
    best_per_layer = sum(
        max(c["gain"] for c in candidates if c["layer"] == layer) for layer in range(first, LAYERS)
    )
    return Problem.model_validate(
        dict(
            candidates=candidates,
            layers=layer_costs,
            budget=dict(
                params=params_budget * TOTAL_PARAMS * layers / LAYERS,
                flops=flops_budget * layers * layer_forward,
            ),
            objective=objective,
            min_gain=min_gain_fraction * best_per_layer,
        )
    )
