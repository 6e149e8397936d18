"""The method registry.

Public API (what `apply_plan` and gain estimators build on):

    from profiler.methods import get_method, list_methods, attach
    site = ...                                   # a profiler.methods.base.Site (from profiler.sites.find_sites)
    att = attach(model, site, "lora", 8)        # -> Attachment
    att.parameters()                             # trainable params added (or unfrozen), for the optimizer
    att.num_parameters()                         # their count
    att.detach()                                 # the model is bit-for-bit as before

`attach` expects the base model frozen (`profiler.methods.base.freeze(model)`); it adds modules
as children of the site's module (so `.to()` and `state_dict()` see them while attached) and
hooks, and `detach` removes both. Adding a method = one module defining a `Method` subclass
and one line in `_METHODS` below, plus its test.
"""

from __future__ import annotations

from torch import nn

from profiler.errors import ProfileError
from profiler.methods.adapter import Adapter
from profiler.methods.base import Attachment, Method
from profiler.methods.bitfit import BitFit
from profiler.methods.ia3 import Ia3
from profiler.methods.lora import Lora
from profiler.methods.norm_affine import NormAffine
from profiler.methods.prompt_tuning import PromptTuning
from profiler.schema import MethodInfo
from profiler.sites import Site

_METHODS: dict[str, Method] = {m.name: m for m in (Lora(), Adapter(), BitFit(), NormAffine(), PromptTuning(), Ia3())}


def get_method(name: str) -> Method:
    """The registered method called `name`; ProfileError if unknown."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ProfileError(f"unknown method {name!r}; registered: {', '.join(_METHODS)}") from None


def list_methods() -> list[MethodInfo]:
    """Info of every registered method, in registry order."""
    return [m.info for m in _METHODS.values()]


def attach(model: nn.Module, site: Site, method: str, setting: int | None = None) -> Attachment:
    """Attach method `method` with `setting` to `model` at `site`; returns the Attachment."""
    return get_method(method).attach(model, site, setting)
