"""Build a model (random weights, meta device by default) and its example inputs from a ModelSpec."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as CAUSAL_LM_TYPES,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES as MASKED_LM_TYPES

from profiler.errors import ProfileError
from profiler.models.catalog import SHAPES
from profiler.models.cnn import SmallCNN
from profiler.schema import ModelSpec

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Position embeddings reserved by model types that offset positions past the padding index.
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2}
CNN_IMAGE = 32


@dataclass
class Built:
    """A model with random weights and how to make its inputs: `inputs(batch, seq_len, device)` -> (args, kwargs)."""

    model: nn.Module
    name: str
    architecture: str
    inputs: Callable[[int, int, torch.device], tuple[tuple, dict[str, Any]]]
    tokens: Callable[[int], int]
    text: bool
    head_output: str = "its first output"
    """What the task head reads (for notes): the logits, or the mean-pooled last hidden state."""


def config_of(spec: ModelSpec) -> dict[str, Any]:
    """The spec's config as a dict: the catalog shape's, the given one, or the directory's config.json."""
    if spec.name is not None:
        shape = SHAPES.get(spec.name)
        if shape is None:
            raise ProfileError(f"unknown model {spec.name!r}; built-in: {', '.join(SHAPES)}")
        return dict(shape.config)
    if spec.config is not None:
        return dict(spec.config)
    path = Path(str(spec.path))
    if not (path / "config.json").is_file():
        raise ProfileError(f"model directory {path.name!r} has no config.json")
    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True).to_dict()
    except (OSError, ValueError, KeyError) as exc:
        raise ProfileError(f"cannot read the config in {path.name!r}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def hf_config(config: dict[str, Any]) -> Any:
    """A transformers PretrainedConfig from a dict with `model_type`; ProfileError if invalid."""
    config = dict(config)
    model_type = config.pop("model_type")
    for key in ("architectures", "transformers_version", "_name_or_path", "torch_dtype", "dtype"):
        config.pop(key, None)
    try:
        cfg = AutoConfig.for_model(model_type, **config)
    except (ValueError, TypeError, KeyError) as exc:
        raise ProfileError(f"bad config: {_one_line(exc)}") from None
    if hasattr(cfg, "use_cache"):
        cfg.use_cache = False
    return cfg


def _text_inputs(vocab: int) -> Callable[[int, int, torch.device], tuple[tuple, dict[str, Any]]]:
    def inputs(batch: int, seq_len: int, device: torch.device) -> tuple[tuple, dict[str, Any]]:
        ids = torch.arange(batch * seq_len, device=device).remainder(vocab).view(batch, seq_len)
        return (), {"input_ids": ids}

    return inputs


def _image_inputs(channels: int, size: int) -> Callable[[int, int, torch.device], tuple[tuple, dict[str, Any]]]:
    def inputs(batch: int, seq_len: int, device: torch.device) -> tuple[tuple, dict[str, Any]]:
        return (), {"pixel_values": torch.zeros(batch, channels, size, size, device=device)}

    return inputs


def resolve_task(spec: ModelSpec, task: str = "auto") -> str:
    """The task a model is trained for: `task` unless auto; auto is causal_lm for decoders (a config type with a
    causal-LM class and no masked-LM class: GPT-2, Llama, Mistral, Qwen... but not BERT), else classification."""
    if task != "auto":
        return task
    model_type = config_of(spec).get("model_type")
    return "causal_lm" if model_type in CAUSAL_LM_TYPES and model_type not in MASKED_LM_TYPES else "classification"


def config_dtype(spec: ModelSpec) -> str | None:
    """The weights' dtype a config declares (`torch_dtype`, or `dtype` in newer transformers), if a known one."""
    config = config_of(spec)
    declared = config.get("torch_dtype") or config.get("dtype")
    return declared if declared in ("float32", "bfloat16", "float16") else None


def build(spec: ModelSpec, device: torch.device | str = "meta", attention: str | None = "sdpa",
          task: str = "auto") -> Built:
    """Build the model of `spec` on `device` (weights random; uninitialized on meta), in eval mode: the
    ForCausalLM class for causal_lm (`resolve_task`), the base model otherwise."""
    config = config_of(spec)
    if config.get("model_type") == "small-cnn":
        with torch.device(device):
            model = SmallCNN()
        return Built(model.eval(), spec.label(), "SmallCNN", _image_inputs(3, CNN_IMAGE),
                     lambda seq: CNN_IMAGE * CNN_IMAGE, False)
    cfg = hf_config(config)
    auto = AutoModelForCausalLM if resolve_task(spec, task) == "causal_lm" else AutoModel
    try:
        with torch.device(device):
            model = auto.from_config(cfg, attn_implementation=attention) if attention else auto.from_config(cfg)
    except ValueError as exc:
        if attention is not None and "attention" in str(exc).lower():
            return build(spec, device, None, task)
        raise ProfileError(f"unsupported model: {_one_line(exc)}") from None
    except (TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise ProfileError(f"unsupported model: {_one_line(exc)}") from None
    name = f"{type(model).__name__}[{getattr(cfg, '_attn_implementation', None) or 'default'}]"
    image_size = getattr(cfg, "image_size", None)
    if image_size is not None and getattr(cfg, "vocab_size", None) is None:
        size = image_size if isinstance(image_size, int) else image_size[0]
        patch = getattr(cfg, "patch_size", 16)
        patch = patch if isinstance(patch, int) else patch[0]
        return Built(model.eval(), spec.label(), name, _image_inputs(getattr(cfg, "num_channels", 3), size),
                     lambda seq: (size // patch) ** 2 + 1, False)
    vocab = getattr(cfg, "vocab_size", None)
    if not isinstance(vocab, int):
        raise ProfileError(f"unsupported model {type(model).__name__}: neither token ids nor pixel inputs")
    head_output = "the logits" if auto is AutoModelForCausalLM else "the mean-pooled last hidden state"
    return Built(model.eval(), spec.label(), name, _text_inputs(vocab), lambda seq: seq, True, head_output)


def max_tokens(spec: ModelSpec) -> int | None:
    """The longest token sequence the model's position embeddings allow; None if not bounded by them."""
    config = config_of(spec)
    if config.get("model_type") in ("small-cnn", "llama"):  # no positions / rotary positions extrapolate
        return None
    cfg = hf_config(config)
    limit = getattr(cfg, "max_position_embeddings", getattr(cfg, "n_positions", None))
    if not isinstance(limit, int) or getattr(cfg, "image_size", None) is not None:
        return None
    return limit - POSITION_OFFSET.get(str(config.get("model_type")), 0)
