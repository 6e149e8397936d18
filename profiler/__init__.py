"""Profiler: what each adapter candidate costs on a real model (params, FLOPs, latency, memory).

`profiler.schema`, `profiler.models.catalog.list_models` and `profiler.errors` import without torch;
everything else is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from profiler.errors import Cancelled, ProfileError
from profiler.schema import (
    CatalogEntry,
    MethodInfo,
    ModelInfo,
    ModelSpec,
    Profile,
    ProfileCandidate,
    ProfileLayer,
    ProfileOptions,
)

_LAZY = {"profile_model": "profiler.measure.profile", "list_models": "profiler.models.catalog",
         "list_methods": "profiler.methods.registry"}

__all__ = ["Cancelled", "CatalogEntry", "MethodInfo", "ModelInfo", "ModelSpec", "Profile", "ProfileCandidate",
           "ProfileError", "ProfileLayer", "ProfileOptions", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'profiler' has no attribute {name!r}")
