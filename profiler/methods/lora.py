"""LoRA: a low-rank update B·A (rank r, scaled alpha/r) added to a linear or conv output; mergeable."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from profiler.methods.base import Attachment, Method, add_child, like
from profiler.schema import MethodInfo
from profiler.sites import Site

ATTR = "peft_lora"


class LoraLinear(nn.Module):
    """Low-rank update of a d_in -> d_out map on the last dim: out + (alpha/r)·x A^T B^T.

    The update is folded into one addmm with the base output, so its forward is exactly
    2·T·r·(d_in + d_out) FLOPs over T tokens.
    """

    def __init__(self, d_in: int, d_out: int, rank: int, alpha: float, dropout: float, **factory: object) -> None:
        super().__init__()
        self.scale = alpha / rank
        self.dropout = nn.Dropout(dropout)
        self.lora_A = nn.Parameter(torch.empty(rank, d_in, **factory))
        self.lora_B = nn.Parameter(torch.zeros(d_out, rank, **factory))
        if not self.lora_A.is_meta:
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        """The weight update (alpha/r)·B·A, shape (d_out, d_in)."""
        return self.scale * (self.lora_B @ self.lora_A)

    def update(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The base output plus the low-rank update, computed in the adapter's dtype (casts are no-ops in float32)."""
        xa = F.linear(self.dropout(x).to(self.lora_A.dtype), self.lora_A)
        flat = torch.addmm(out.reshape(-1, out.shape[-1]).to(xa.dtype), xa.reshape(-1, xa.shape[-1]), self.lora_B.t(),
                           alpha=self.scale)
        return flat.view(out.shape).to(out.dtype)


class LoraConv(nn.Module):
    """Low-rank update of a Conv2d: a rank-r conv with the base's geometry, then a 1x1 conv to d_out."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float, dropout: float, **factory: object) -> None:
        super().__init__()
        self.scale = alpha / rank
        self.dropout = nn.Dropout(dropout)
        self.lora_A = nn.Conv2d(base.in_channels, rank, base.kernel_size, base.stride, base.padding,  # type: ignore[arg-type]
                                base.dilation, bias=False, **factory)
        self.lora_B = nn.Conv2d(rank, base.out_channels, 1, bias=False, **factory)
        nn.init.zeros_(self.lora_B.weight)

    def delta(self) -> torch.Tensor:
        """The kernel update (alpha/r)·B∘A, shape of the base kernel (out, in, kh, kw)."""
        b = self.lora_B.weight.flatten(1)
        return self.scale * torch.einsum("or,rikl->oikl", b, self.lora_A.weight)

    def update(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The base output plus the low-rank update, computed in the adapter's dtype."""
        delta = self.lora_B(self.lora_A(self.dropout(x).to(self.lora_B.weight.dtype)))
        return torch.add(out, delta.to(out.dtype), alpha=self.scale)


class Lora(Method):
    info = MethodInfo(name="lora", description="Low-rank update B·A on a linear or conv weight (Hu et al. 2021).",
                      setting="rank", default_settings=[4, 8, 16], mergeable=True, adds_latency=True)
    site_kinds = ("linear", "conv")
    option = "ranks"
    suffix = "r"

    def __init__(self, alpha_per_rank: float = 2.0, dropout: float = 0.0) -> None:
        self.alpha_per_rank = alpha_per_rank
        self.dropout = dropout

    def config(self, site: Site, setting: int | None) -> dict[str, object]:
        """{"rank", "alpha", "dropout"}."""
        assert setting is not None
        return {"rank": setting, "alpha": self.alpha_per_rank * setting, "dropout": self.dropout}

    def attach(self, model: nn.Module, site: Site, setting: int | None) -> Attachment:
        """Add a rank-`setting` LoRA update to the linear/conv at `site` (a forward hook on it)."""
        assert setting is not None
        module = model.get_submodule(site.path)
        alpha = self.alpha_per_rank * setting
        if site.kind == "conv":
            lora: LoraLinear | LoraConv = LoraConv(module, setting, alpha, self.dropout, **like(module))  # type: ignore[arg-type]
        else:
            lora = LoraLinear(site.dims["d_in"], site.dims["d_out"], setting, alpha, self.dropout, **like(module))
        undo_child = add_child(module, ATTR, lora)
        handle = module.register_forward_hook(lambda m, args, out: lora.update(args[0], out))
        # transformers' Conv1D stores its weight as (d_in, d_out): the transpose of Linear's.
        transposed = site.kind == "linear" and type(module).__name__ == "Conv1D"

        def fold() -> None:
            delta = lora.delta()
            module.weight.add_((delta.t() if transposed else delta).to(module.weight.dtype))

        return Attachment(list(lora.parameters()), True, [undo_child, handle.remove], fold)
