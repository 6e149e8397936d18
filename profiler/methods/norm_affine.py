"""Norm-affine tuning: train a norm's scale and shift; add them where the norm has none."""

from __future__ import annotations

import torch
from torch import nn

from profiler.methods.base import HALF, Attachment, Method, add_child, unfreeze
from profiler.schema import MethodInfo
from profiler.sites import Site

ATTR = "peft_affine"


class ChannelAffine(nn.Module):
    """out·w + b over the channel dim (dim 1, for Instance/Batch/GroupNorm) or the last dims (LayerNorm)."""

    def __init__(self, shape: tuple[int, ...], channel_dim: int, **factory: object) -> None:
        super().__init__()
        self.channel_dim = channel_dim
        self.weight = nn.Parameter(torch.ones(shape, **factory))
        self.bias = nn.Parameter(torch.zeros(shape, **factory))

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weight.to(out.dtype), self.bias.to(out.dtype)
        if self.channel_dim == 1:
            view = (-1,) + (1,) * (out.dim() - 2)
            return out * weight.view(view) + bias.view(view)
        return out * weight + bias


class NormAffine(Method):
    info = MethodInfo(name="norm_affine", description="Train a norm's affine (Layer/RMS/Instance/Batch/GroupNorm); "
                      "adds one where the norm has none.", setting=None, default_settings=[], mergeable=True,
                      adds_latency=False)
    site_kinds = ("norm",)

    def attach(self, model: nn.Module, site: Site, setting: int | None) -> Attachment:
        """Unfreeze the norm's weight and bias, or add an affine after it if it has none."""
        module = model.get_submodule(site.path)
        existing = [p for name in ("weight", "bias") if isinstance(p := getattr(module, name, None), nn.Parameter)]
        if existing:
            return Attachment(existing, False, [unfreeze(existing)])
        shape = tuple(site.dims["shape"]) if "shape" in site.dims else (site.dims["features"],)
        affine = ChannelAffine(shape, 1 if "features" in site.dims else -1, **like_output(site))
        undo_child = add_child(module, ATTR, affine)
        handle = module.register_forward_hook(lambda m, args, out: affine(out))
        return Attachment(list(affine.parameters()), True, [undo_child, handle.remove])


def like_output(site: Site) -> dict[str, object]:
    """Factory kwargs (dtype) of a new affine: the site's recorded output dtype, float32 for half precision."""
    if site.out_spec is None:
        return {}
    dtype = site.out_spec.torch_dtype
    return {"dtype": torch.float32 if dtype in HALF else dtype}
