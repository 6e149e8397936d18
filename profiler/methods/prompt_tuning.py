"""Prompt tuning (Lester et al. 2021): m trained vectors prepended to the input embeddings."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from profiler.methods.base import Attachment, Method, add_child, like
from profiler.schema import MethodInfo
from profiler.sites import Site

ATTR = "peft_prompt"


class SoftPrompt(nn.Module):
    """m x d trained vectors; `prepend` turns a call's input_ids into inputs_embeds with them in front."""

    def __init__(self, length: int, dim: int, embedding: nn.Module, **factory: Any) -> None:
        super().__init__()
        self.prompt = nn.Parameter(torch.randn(length, dim, **factory) * 0.02)
        self.embedding = [embedding]  # a list so it is not registered as a child

    def prepend(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """Forward pre-hook of the root model (input_ids given first or by keyword)."""
        if len(args) > 1:
            raise ValueError("prompt tuning: pass model inputs other than input_ids by keyword")
        ids = args[0] if args else kwargs.pop("input_ids")
        if kwargs.get("position_ids") is not None:
            raise ValueError("prompt tuning: explicit position_ids are not supported")
        embeds = self.embedding[0](ids)
        batch, m = embeds.shape[0], self.prompt.shape[0]
        kwargs["inputs_embeds"] = torch.cat([self.prompt.to(embeds.dtype).expand(batch, -1, -1), embeds], dim=1)
        for key, fill in (("attention_mask", 1), ("token_type_ids", 0)):
            if kwargs.get(key) is not None:
                value = kwargs[key]
                kwargs[key] = torch.cat([value.new_full((batch, m), fill), value], dim=1)
        return (), kwargs


class PromptTuning(Method):
    info = MethodInfo(name="prompt_tuning", description="Soft prompt of m trained vectors before the input tokens.",
                      setting="length", default_settings=[10, 20], mergeable=False, adds_latency=True)
    site_kinds = ("embedding",)
    option = "prompt_lengths"
    suffix = "m"
    measured_by = "sequence"

    def group(self, site: Site) -> str | None:
        """All prompt lengths share one group."""
        return self.name

    def attach(self, model: nn.Module, site: Site, setting: int | None) -> Attachment:
        """Prepend `setting` trained vectors to the embeddings of `model`'s input_ids (root pre-hook)."""
        assert setting is not None
        embedding = model.get_submodule(site.path)
        prompt = SoftPrompt(setting, site.dims["d_out"], embedding, **like(embedding))
        undo_child = add_child(embedding, ATTR, prompt)
        handle = model.register_forward_pre_hook(prompt.prepend, with_kwargs=True)
        return Attachment([prompt.prompt], True, [undo_child, handle.remove])
