"""BitFit (Ben Zaken et al. 2021): train an existing bias; adds no forward op."""

from __future__ import annotations

from torch import nn

from profiler.methods.base import Attachment, Method, unfreeze
from profiler.schema import MethodInfo
from profiler.sites import Site


class BitFit(Method):
    info = MethodInfo(name="bitfit", description="Train the bias of a linear/conv module (norm biases: see norm_affine).",
                      setting=None, default_settings=[], mergeable=True, adds_latency=False)
    site_kinds = ("bias",)

    def attach(self, model: nn.Module, site: Site, setting: int | None) -> Attachment:
        """Unfreeze the bias of the module at `site`."""
        bias = model.get_submodule(site.path).bias
        assert isinstance(bias, nn.Parameter)
        return Attachment([bias], False, [unfreeze([bias])])
