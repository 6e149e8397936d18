"""/v1/models and /v1/methods: what can be profiled, and with which adapters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.bodies import StrictRoute
from profiler.methods import list_methods
from profiler.models.catalog import list_models

router = APIRouter(prefix="/v1", tags=["catalog"], route_class=StrictRoute)


@router.get("/models", summary="The built-in model catalog")
def models() -> list[Any]:
    """Catalog models (shapes of well-known models; profiled with random weights)."""
    return [m.model_dump(mode="json") for m in list_models()]


@router.get("/methods", summary="Adapter methods and their settings")
def methods() -> list[Any]:
    """Each method, what it adapts, and the settings it is profiled with."""
    return [m.model_dump(mode="json") for m in list_methods()]
