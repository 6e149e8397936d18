"""(IA)^3 (Liu et al. 2022): a learned vector rescaling one side of a linear or conv; mergeable.

Which side: the project has no notion of a "feedforward" role, so the rule is by name, the
one peft's default (IA)^3 configs encode per architecture. A site scales its INPUT (a vector of
d_in, peft's `feedforward_modules`) when it is an MLP down-projection: its path ends, at a dot,
with one of `FEEDFORWARD` (BERT/RoBERTa/ViT `output.dense`, GPT-2 `mlp.c_proj`, LLaMA/Mistral/
Qwen/Gemma `down_proj`, OPT/BART/Phi `fc2`, T5 `wo`, Mixtral `w2`, Falcon/BLOOM/NeoX
`dense_4h_to_h`, GPT-J `fc_out`) and it is not inside attention (no "attn"/"attention" in the
path: BERT's `attention.output.dense` and GPT-2's `attn.c_proj` scale their output). Every
other site scales its OUTPUT (a vector of d_out; the bias is scaled with it). The rule reads
only the path, so `profiler.methods.export` writes the same choice into peft's `feedforward_modules`
from candidate ids alone. The vector starts at ones: at init the model is unchanged.

Costs over T tokens: forward adds one multiply per element of the scaled activation (T·d);
backward computes the vector's gradient, a multiply-add per element (2·T·d). An input-scaled
site also needs the gradient at its input, through the frozen weight (2·T·d_in·d_out): inside
a layer that is part of the layer's own backward, which plans pay once; a site after the last
layer (layer None) has no such shared backward and is measured with it. Merging multiplies the
weight's rows (output side; and the bias) or columns (input side) by the vector.
"""

from __future__ import annotations

import torch
from torch import nn

from profiler.measure.tensors import TensorSpec
from profiler.methods.base import Attachment, Method, add_child, like
from profiler.schema import MethodInfo
from profiler.sites import ATTENTION, Site

ATTR = "peft_ia3"
FEEDFORWARD = ("output.dense", "mlp.c_proj", "down_proj", "fc2", "wo", "w2", "dense_4h_to_h", "fc_out")


def scales_input(path: str) -> bool:
    """Whether (IA)^3 at module `path` scales the module's input (an MLP down-projection) rather than its output."""
    if ATTENTION.search(path):
        return False
    return any(path == name or path.endswith("." + name) for name in FEEDFORWARD)


class Scale(nn.Module):
    """x·l over the channel dim (the last dim, or dim 1 for convs); l starts at ones."""

    def __init__(self, size: int, channel_dim: int, **factory: object) -> None:
        super().__init__()
        self.channel_dim = channel_dim
        self.ia3_l = nn.Parameter(torch.ones(size, **factory))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.ia3_l.to(x.dtype)
        if self.channel_dim == 1:
            return x * scale.view((-1,) + (1,) * (x.dim() - 2))
        return x * scale


class Measured(nn.Module):
    """The profiler's isolated stand-in for an (IA)^3 site: the scaled activation alone, or the site's module.

    `side` is "input" or "output", `kind` the site's kind (it sets the channel dim); `base` (the site's module) is kept only when the input
    gradient through its weight is part of the candidate's own cost (see the module docstring).
    """

    def __init__(self, side: str, kind: str, base: nn.Module | None = None) -> None:
        super().__init__()
        self.side = side
        self.kind = kind
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.base is None else self.base(x)

    def extra_repr(self) -> str:
        return f"side={self.side}, kind={self.kind}"


class Ia3(Method):
    info = MethodInfo(name="ia3", description="(IA)^3: a learned vector rescaling a linear/conv output, or the input "
                      "of an MLP down-projection (Liu et al. 2022).", setting=None, default_settings=[],
                      mergeable=True, adds_latency=True)
    site_kinds = ("linear", "conv")

    def side(self, site: Site) -> str:
        """"input" or "output": which activation of the site the vector scales."""
        return "input" if scales_input(site.path) else "output"

    def config(self, site: Site, setting: int | None) -> dict[str, object]:
        """{"side": "input" | "output"}."""
        return {"side": self.side(site)}

    def host(self, site: Site, module: nn.Module) -> tuple[nn.Module, TensorSpec]:
        """The scaled activation alone; the module too for an input-scaled site outside every layer."""
        side = self.side(site)
        spec = site.in_spec if side == "input" else site.out_spec
        assert spec is not None
        base = module if side == "input" and site.layer is None else None
        return Measured(side, site.kind, base), spec

    def attach(self, model: nn.Module, site: Site, setting: int | None) -> Attachment:
        """Scale the input (pre-hook) or output (hook) of the linear/conv at `site` by a vector of ones."""
        module = model.get_submodule(site.path)
        side = module.side if isinstance(module, Measured) else self.side(site)
        size = site.dims["d_in"] if side == "input" else site.dims["d_out"]
        scale = Scale(size, 1 if site.kind == "conv" else -1, **like(module))
        undo_child = add_child(module, ATTR, scale)
        if side == "input":
            handle = module.register_forward_pre_hook(lambda m, args: (scale(args[0]), *args[1:]))
        else:
            handle = module.register_forward_hook(lambda m, args, out: scale(out))
        if isinstance(module, Measured):
            return Attachment([scale.ia3_l], True, [undo_child, handle.remove])

        def fold() -> None:
            weight, bias = module.weight, getattr(module, "bias", None)
            # The weight's d_out axis is 0 (Linear, conv) or 1 (transformers' Conv1D: (d_in, d_out)).
            out_axis = 1 if type(module).__name__ == "Conv1D" else 0
            axis = 1 - out_axis if side == "input" else out_axis
            shape = [1] * weight.dim()
            shape[axis] = -1
            weight.mul_(scale.ia3_l.view(shape).to(weight.dtype))
            if side == "output" and isinstance(bias, nn.Parameter):
                bias.mul_(scale.ia3_l.to(bias.dtype))

        return Attachment([scale.ia3_l], True, [undo_child, handle.remove], fold)
