"""How big a model is, from its config alone, before anything is built (request-time limits).

Building a model, even on the `meta` device, costs time and memory per layer, so shapes are checked
first: every shape number must be a positive integer under a bound far above any real model, and the
parameter count is estimated from them (embeddings, attention with grouped key/value heads, a gated or
plain MLP; biases and norms ignored: within a few percent for transformer configs). The exact count
is known once the model is built on `meta` (`profiler.measure.stages.prepare`).
"""

from __future__ import annotations

from typing import Any

from profiler.errors import ProfileError
from profiler.models.build import hf_config

# Attribute of a transformers config -> largest accepted value.
SHAPE_LIMITS = {
    "num_hidden_layers": 1024, "hidden_size": 65_536, "intermediate_size": 1_048_576, "vocab_size": 4_194_304,
    "num_attention_heads": 4096, "num_key_value_heads": 4096, "max_position_embeddings": 1_048_576,
    "image_size": 8192, "patch_size": 8192, "num_channels": 1024,
}
# MLPs with a gate projection (three matrices instead of two).
GATED = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo", "smollm3")


def shape_of(config: dict[str, Any]) -> dict[str, int]:
    """The config's shape numbers (transformers' defaults filled in), each checked against SHAPE_LIMITS."""
    cfg = hf_config(config)
    shape = {}
    for key, limit in SHAPE_LIMITS.items():
        value = getattr(cfg, key, None)
        if value is None or isinstance(value, list | tuple):
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise ProfileError(f"config: {key} = {value!r} is not an integer in 1..{limit:,}")
        shape[key] = value
    return shape


def estimated_params(config: dict[str, Any]) -> int:
    """About how many parameters the config's model (`AutoModel`, no task head) has."""
    shape = shape_of(config)
    hidden, layers = shape.get("hidden_size", 0), shape.get("num_hidden_layers", 1)
    heads = shape.get("num_attention_heads", 1)
    kv = shape.get("num_key_value_heads", heads)
    inner = shape.get("intermediate_size", 4 * hidden)
    attention = 2 * hidden * hidden + 2 * hidden * (hidden * kv // max(heads, 1))
    mlp = (3 if config.get("model_type") in GATED else 2) * hidden * inner
    return shape.get("vocab_size", 0) * hidden + layers * (attention + mlp)


REQUIRED_SHAPE = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
"""Shape keys a given config must set (those its config class has), unless defaults are allowed."""


def defaulted_shape(config: dict[str, Any]) -> dict[str, Any]:
    """The shape keys a config dict leaves to transformers' defaults, with the defaults it would take
    (a key counts as set under its own name or its alias, e.g. GPT-2's `n_layer`)."""
    cfg = hf_config(config)
    aliases = getattr(cfg, "attribute_map", {})
    return {key: getattr(cfg, key) for key in REQUIRED_SHAPE
            if hasattr(cfg, key) and key not in config and aliases.get(key) not in config}


def incomplete_config(defaulted: dict[str, Any]) -> str:
    """The one-line refusal of a config that leaves shape keys to transformers' defaults."""
    return (f"config: no {', '.join(defaulted)} (transformers would take "
            f"{', '.join(f'{k}={v}' for k, v in defaulted.items())}): give them, or allow_defaults "
            "(--allow-defaults) to profile with those defaults")
