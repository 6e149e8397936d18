"""What every method builds on: the `Attachment` it returns and the `Method` base (sites: `profiler.sites`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from profiler.measure.tensors import TensorSpec
from profiler.schema import MethodInfo
from profiler.sites import Site


class Attachment:
    """A method attached to a model: its trainable parameters and how to undo it exactly.

    `fold`, for mergeable methods, writes the update into the base weights in place.
    """

    def __init__(
        self,
        params: list[nn.Parameter],
        created: bool,
        undo: list[Callable[[], None]],
        fold: Callable[[], None] | None = None,
    ) -> None:
        self._params = params
        self.created = created
        self._undo = undo
        self._fold = fold

    def parameters(self) -> list[nn.Parameter]:
        """The trainable parameters this attachment adds (or unfreezes)."""
        return list(self._params)

    def num_parameters(self) -> int:
        """Number of trainable scalars added."""
        return sum(p.numel() for p in self._params)

    def detach(self) -> None:
        """Remove the attachment, leaving the model as it was (idempotent)."""
        while self._undo:
            self._undo.pop()()

    def merge(self) -> None:
        """Fold the update into the base weights and remove the added modules and hooks.

        The model then computes what it computed with the attachment, at the base
        model's inference cost. Raises ValueError for methods that are not mergeable.
        """
        if self._fold is None:
            raise ValueError("this attachment is not mergeable")
        with torch.no_grad():
            self._fold()
        self._fold = None
        self.detach()


def add_child(module: nn.Module, name: str, child: nn.Module) -> Callable[[], None]:
    """Register `child` under `module`; returns the undo."""
    if hasattr(module, name):
        raise ValueError(f"{type(module).__name__} already has an attachment named {name!r}")
    module.add_module(name, child)
    return lambda: delattr(module, name)


def unfreeze(params: list[nn.Parameter]) -> Callable[[], None]:
    """Make params trainable; returns the undo restoring their flags."""
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)

    def undo() -> None:
        for p, flag in zip(params, before, strict=True):
            p.requires_grad_(flag)

    return undo


HALF = (torch.bfloat16, torch.float16)


def like(module: nn.Module) -> dict[str, Any]:
    """Factory kwargs (device, dtype) for the new trainable parameters of an adapter on `module`.

    The device of the module's first floating parameter; its dtype, but float32 when that is half
    precision (bfloat16/float16): mixed precision as peft does it by default (`autocast_adapter_dtype`),
    adapter weights (and so their gradients and AdamW moments) in float32 beside a half-precision base.
    Adapters cast their input to their own dtype and their output back.
    """
    for p in module.parameters():
        if p.is_floating_point():
            return {"device": p.device, "dtype": torch.float32 if p.dtype in HALF else p.dtype}
    return {}


class Method(ABC):
    """An adapter method: which sites it takes, its settings, how to attach, and how candidates are named."""

    info: MethodInfo
    site_kinds: tuple[str, ...]
    option: str | None = None  # ProfileOptions field listing its settings
    suffix: str = ""  # candidate-id prefix of the setting, e.g. "r" for ":r8"
    measured_by: str = "site"  # "site": isolated host module; "sequence": layers at a longer sequence

    @property
    def name(self) -> str:
        """Registry name."""
        return self.info.name

    def settings(self, options: Any) -> list[int | None]:
        """The settings to profile under `options` ([None] for methods without a setting)."""
        return list(getattr(options, self.option)) if self.option else [None]

    def candidate_id(self, site: Site, setting: int | None) -> str:
        """Stable id: "{site}:{method}" plus ":{suffix}{setting}"."""
        base = f"{site.path}:{self.name}"
        return base if setting is None else f"{base}:{self.suffix}{setting}"

    def group(self, site: Site) -> str | None:
        """Candidates of one group are exclusive (all settings of one site); None when single-setting."""
        return f"{site.path}:{self.name}" if self.option else None

    def config(self, site: Site, setting: int | None) -> dict[str, Any]:
        """The candidate's config dict (e.g. {"rank": 8})."""
        return {} if setting is None else {self.info.setting: setting}

    def host(self, site: Site, module: nn.Module) -> tuple[nn.Module, TensorSpec]:
        """Module to measure in isolation (a copy of the site module) and its input spec."""
        assert site.in_spec is not None
        return module, site.in_spec

    @abstractmethod
    def attach(self, model: nn.Module, site: Site, setting: int | None) -> Attachment:
        """Attach to `model` at `site` (a path inside `model`); the base model should be frozen."""


def freeze(model: nn.Module) -> nn.Module:
    """Set requires_grad False on every parameter; returns the model."""
    return model.requires_grad_(False)

