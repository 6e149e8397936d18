"""Request-time checks of a model spec and profiling options, and the profile cache key.

A model directory must lie under the configured models root (after resolving `..` and symlinks)
and hold safetensors weights and no pickle (`profiler.models.directory`): the service never
unpickles user files. Configs with `auto_map` (custom code) are refused, so no user code is ever
imported. A config's shape and estimated size are checked against the limits before a job is
queued, and a job spec names a directory relative to the models root, so neither errors nor job
bodies show server paths.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from app.errors import ApiError
from app.settings import Settings
from profiler.devices import device_named
from profiler.errors import ProfileError
from profiler.jsontext import JsonTextError, loads
from profiler.measure.stages import incomplete_config
from profiler.methods.registry import get_method
from profiler.models.catalog import SHAPES
from profiler.models.directory import check_model_dir
from profiler.models.size import defaulted_shape, estimated_params
from profiler.schema import ModelSpec, ProfileOptions


def torch_version() -> str:
    """The installed torch version, read without importing torch."""
    try:
        return version("torch")
    except PackageNotFoundError:
        return "unknown"


def _refuse_custom_code(config: dict[str, Any], where: str) -> None:
    if "auto_map" in config:
        raise ApiError(422, f"{where}: configs with `auto_map` (custom model code) are refused")


def _root(settings: Settings) -> Path:
    if settings.models_root is None:
        raise ApiError(422, "model directories are disabled: PEFT_PLANNER_MODELS_ROOT is not set")
    return settings.models_root.resolve()


def resolve_model_path(relative: str, settings: Settings) -> Path:
    """The absolute directory of a model path stored relative to the models root (in a worker)."""
    return _root(settings) / relative


def model_dir(path: str, settings: Settings, field: str = "model.path") -> tuple[str, dict[str, Any]]:
    """The model directory `path` relative to the models root, checked, and its config; ApiError naming
    `field` if refused."""
    root = _root(settings)
    try:
        resolved = (root / path).resolve()
        is_dir = resolved.is_dir()
    except RuntimeError:  # Path.resolve's report of a symlink loop (it names the absolute path)
        raise ApiError(422, f"{field}: not a usable path (a symlink loop)") from None
    except (OSError, ValueError) as exc:  # names too long, NUL bytes
        raise ApiError(422, f"{field}: not a usable path ({getattr(exc, 'strerror', None) or exc})") from None
    if not resolved.is_relative_to(root):
        raise ApiError(403, f"{field} {path!r} lies outside the models root")
    relative = str(resolved.relative_to(root))
    if not is_dir:
        raise ApiError(422, f"{field} {path!r}: no such directory under the models root")
    label = f"{field} {relative!r}"
    try:
        check_model_dir(resolved, label)
    except ProfileError as exc:
        raise ApiError(422, str(exc)) from None
    try:
        config = loads((resolved / "config.json").read_bytes())
    except (JsonTextError, OSError) as exc:
        raise ApiError(422, f"{label}: unreadable config.json ({exc})") from None
    if not isinstance(config, dict):
        raise ApiError(422, f"{label}: config.json is not an object")
    _refuse_custom_code(config, field)
    return relative, config


def _check_size(config: dict[str, Any], settings: Settings, where: str) -> None:
    """ApiError when the config's shape is out of bounds or its estimated size over the limit."""
    if config.get("model_type") == "small-cnn":
        return
    try:
        params = estimated_params(config)
    except ProfileError as exc:
        raise ApiError(422, f"{where}: {str(exc).removeprefix('config: ')}") from None
    if params > settings.max_model_params:
        raise ApiError(422, f"{where}: the model has about {params:,} parameters; the limit is "
                       f"{settings.max_model_params:,} (PEFT_PLANNER_MAX_MODEL_PARAMS)")


def checked_spec(spec: ModelSpec, settings: Settings, options: ProfileOptions) -> ModelSpec:
    """The spec with its directory made relative to the models root; raises ApiError for what is refused
    (a config that leaves shape keys to defaults, too, unless `options.allow_defaults`)."""
    if spec.path is not None:
        relative, config = model_dir(str(spec.path), settings)
        _check_size(config, settings, "model.path")
        return spec.model_copy(update={"path": relative})
    if spec.config is not None:
        _refuse_custom_code(spec.config, "model.config")
        _check_size(spec.config, settings, "model.config")
        defaulted = {} if spec.config.get("model_type") == "small-cnn" else defaulted_shape(spec.config)
        if defaulted and not options.allow_defaults:
            raise ApiError(422, "model." + incomplete_config(defaulted).replace("allow_defaults (--allow-defaults)",
                                                                                "options.allow_defaults"))
        return spec
    shape = SHAPES.get(str(spec.name))
    if shape is None:
        raise ApiError(422, f"model.name {spec.name!r} is not in the catalog (GET /v1/models)")
    if shape.entry.params > settings.max_model_params:
        raise ApiError(422, f"model.name: {spec.name} has ~{shape.entry.params:,} parameters; "
                       f"the limit is {settings.max_model_params} (PEFT_PLANNER_MAX_MODEL_PARAMS)")
    return spec


def checked_options(options: ProfileOptions) -> ProfileOptions:
    """The options, with every method checked against the registry and a target device by name against the
    table (422s naming them)."""
    for i, name in enumerate(options.methods):
        try:
            get_method(name)
        except ProfileError as exc:
            raise ApiError(422, f"options.methods.{i}: {exc}") from None
    if isinstance(options.target_device, str):
        try:
            device_named(options.target_device)
        except ProfileError as exc:
            raise ApiError(422, f"options.target_device: {str(exc).replace(' (or a JSON file of its figures)', '')}"
                           " (or its figures as an object)") from None
    return options


def _dir_fingerprint(path: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file()
    )


def cache_key(spec: ModelSpec, options: ProfileOptions, settings: Settings) -> str:
    """What identifies a profile: spec (with the directory's files), options, torch version."""
    identity = {
        "spec": spec.model_dump(mode="json"),
        "options": options.model_dump(mode="json"),
        "torch": torch_version(),
        "files": _dir_fingerprint(resolve_model_path(spec.path, settings)) if spec.path is not None else None,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
