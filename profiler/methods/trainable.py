"""A plan made trainable on your model, for your own training loop (the transformers `Trainer`, say).

`make_trainable(model, plan)` freezes the model, hands what peft can express to peft (one `LoraConfig`,
`IA3Config`, `LNTuningConfig` or `PromptTuningConfig`, from `profiler.methods.export`), and attaches the
rest of the plan with the planner's own methods (per-module BitFit, bottleneck adapters, (IA)^3 beside
LoRA, a soft prompt beside other adapters), so that exactly the plan's parameters train: their count is
the plan's `params`. `save_trainable` / `load_trainable` write and read those parameters as safetensors.

Candidate ids name modules of the profiled model. When that model sits inside the one you train (a
classification model's `bert`, for instance), give its attribute path as `base_path`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from profiler.candidates import SiteIndex, example_inputs, parse_id
from profiler.errors import ProfileError
from profiler.methods.apply import selected_ids
from profiler.methods.base import Attachment, freeze
from profiler.methods.export import PeftExport, export_plan, peft_config
from profiler.methods.registry import attach


@dataclass
class Trainable:
    """A model ready to train a plan: `model` (peft-wrapped when peft holds part of the plan), the peft
    config used, and the planner's own attachments for the rest, by candidate id."""

    model: nn.Module
    export: PeftExport
    attachments: dict[str, Attachment] = field(default_factory=dict)

    def parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter (what the optimizer gets)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def num_parameters(self) -> int:
        """How many scalars train: the plan's `params`."""
        return sum(p.numel() for p in self.parameters())


def make_trainable(model: nn.Module, plan: Any, inputs: Mapping[str, Any] | None = None,
                   base_path: str = "") -> Trainable:
    """Freeze `model` and make exactly the plan's parameters trainable (peft where it can; module docstring).

    `plan` is a solver `Plan` or a list of candidate ids; `inputs` one batch of keyword inputs of the profiled
    model, to locate its sites (token ids by default); `base_path` the profiled model inside `model`.
    """
    ids = selected_ids(plan)
    base = model.get_submodule(base_path) if base_path else model
    token_dim = getattr(getattr(base, "config", None), "hidden_size", None)
    export = export_plan(ids, token_dim)
    index = SiteIndex(base, dict(inputs) if inputs is not None else example_inputs(base))
    sites = {ref.id: index.site_for(ref) for ref in map(parse_id, ids) if ref.id not in set(export.exported)}
    freeze(model)
    if export.configs:
        from peft import get_peft_model

        config = peft_config(_prefixed(export.configs[0], base_path))
        model = get_peft_model(model, config)
        base = model.get_base_model().get_submodule(base_path) if base_path else model.get_base_model()
    trainable = Trainable(model, export)
    for cid, site in sites.items():
        ref = parse_id(cid)
        trainable.attachments[cid] = attach(base, site, ref.method, ref.setting)
        for p in trainable.attachments[cid].parameters():
            p.requires_grad_(True)
    return trainable


def _prefixed(config: dict[str, Any], base_path: str) -> dict[str, Any]:
    """An exported config whose module names are relative to the profiled model, made relative to the model
    trained (target modules, modules to save and rank/alpha pattern keys get `base_path.` in front)."""
    if not base_path:
        return config
    out = dict(config)
    for key in ("target_modules", "modules_to_save"):
        if isinstance(out.get(key), list):
            out[key] = [f"{base_path}.{name}" for name in out[key]]
    for key in ("rank_pattern", "alpha_pattern"):
        if out.get(key):
            out[key] = {f"{re.escape(base_path)}\\.{k}": v for k, v in out[key].items()}
    return out


def save_trainable(model: nn.Module, path: str | Path) -> list[str]:
    """Write every trainable parameter of `model` to a safetensors file; returns their names."""
    weights = {name: p.detach().contiguous().cpu() for name, p in model.named_parameters() if p.requires_grad}
    save_file(weights, str(path))
    return list(weights)


def load_trainable(model: nn.Module, path: str | Path) -> None:
    """Copy the parameters of a `save_trainable` file into `model` (made trainable the same way);
    ProfileError naming a parameter the model lacks or whose shape differs."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in load_file(str(path)).items():
            if name not in params or params[name].shape != value.shape:
                raise ProfileError(f"{Path(path).name}: the model has no parameter {name!r} of shape "
                                   f"{list(value.shape)}: make the same plan trainable first")
            params[name].copy_(value)
