"""Bottleneck adapter (Houlsby et al. 2019): x + up(gelu(down(x))) after a layer's attention or MLP."""

from __future__ import annotations

import torch
from torch import nn

from profiler.measure.tensors import TensorSpec
from profiler.methods.base import Attachment, Method, add_child, like
from profiler.schema import MethodInfo
from profiler.sites import Site

ATTR = "peft_adapter"


class Bottleneck(nn.Module):
    """d -> b -> d with GELU and a residual; `up` starts at zero so the model is unchanged at init."""

    def __init__(self, d: int, b: int, **factory: object) -> None:
        super().__init__()
        self.down = nn.Linear(d, b, **factory)
        self.act = nn.GELU()
        self.up = nn.Linear(b, d, **factory)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x.to(self.down.weight.dtype)))).to(x.dtype)


class Adapter(Method):
    info = MethodInfo(name="adapter", description="Bottleneck adapter after a layer's attention or MLP output.",
                      setting="bottleneck", default_settings=[16, 64], mergeable=False, adds_latency=True)
    site_kinds = ("adapter",)
    option = "bottlenecks"
    suffix = "b"

    def config(self, site: Site, setting: int | None) -> dict[str, object]:
        """{"bottleneck", "position"}."""
        return {"bottleneck": setting, "position": site.position}

    def host(self, site: Site, module: nn.Module) -> tuple[nn.Module, TensorSpec]:
        """Measured alone on the site's output: an identity host."""
        assert site.out_spec is not None
        return nn.Identity(), site.out_spec

    def attach(self, model: nn.Module, site: Site, setting: int | None) -> Attachment:
        """Insert a bottleneck of size `setting` on the output of the module at `site`."""
        assert setting is not None
        module = model.get_submodule(site.path)
        bottleneck = Bottleneck(site.dims["d_out"], setting, **like(module))
        undo_child = add_child(module, ATTR, bottleneck)
        handle = module.register_forward_hook(lambda m, args, out: bottleneck(out))
        return Attachment(list(bottleneck.parameters()), True, [undo_child, handle.remove])
