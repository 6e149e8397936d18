"""/v1/models, /v1/methods and /v1/devices: what can be profiled, with which adapters, for which GPUs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.bodies import StrictRoute
from profiler.devices import DEVICES
from profiler.methods import list_methods
from profiler.models.catalog import list_models

router = APIRouter(prefix="/v1", tags=["catalog"], route_class=StrictRoute)


@router.get("/models", summary="The built-in model catalog")
def models() -> list[Any]:
    """Catalog models (shapes of well-known models; profiled with random weights)."""
    return [m.model_dump(mode="json") for m in list_models()]


@router.get("/devices", summary="GPUs to plan for (profile options' target_device)")
def devices() -> list[Any]:
    """The device table: dense peak rates, memory bandwidth and size, launch cost, and the source of each."""
    return [d.model_dump(mode="json") for d in DEVICES.values()]


@router.get("/methods", summary="Adapter methods and their settings")
def methods() -> list[Any]:
    """Each method, what it adapts, and the settings it is profiled with."""
    return [m.model_dump(mode="json") for m in list_methods()]
