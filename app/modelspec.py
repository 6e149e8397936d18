"""Request-time checks of a model spec, and the profile cache key.

A model directory must lie under the configured models root (after
resolving `..` and symlinks), and its weights must be safetensors: the
service never unpickles user files. Configs with `auto_map` (custom code)
are refused, so no user code is ever imported.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from app.errors import ApiError
from app.settings import Settings
from profiler.models.catalog import list_models
from profiler.schema import ModelSpec, ProfileOptions

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def torch_version() -> str:
    """The installed torch version, read without importing torch."""
    try:
        return version("torch")
    except PackageNotFoundError:
        return "unknown"


def _refuse_custom_code(config: dict[str, Any], where: str) -> None:
    if "auto_map" in config:
        raise ApiError(422, f"{where}: configs with `auto_map` (custom model code) are refused")


def model_dir(path: str, settings: Settings, field: str = "model.path") -> Path:
    """The resolved model directory, checked to lie under the models root; errors name `field`."""
    if settings.models_root is None:
        raise ApiError(422, "model directories are disabled: PEFT_PLANNER_MODELS_ROOT is not set")
    root = settings.models_root.resolve()
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise ApiError(403, f"{field} {path!r} lies outside the models root")
    if not resolved.is_dir():
        raise ApiError(422, f"{field} {path!r} is not a directory under the models root")
    config = resolved / "config.json"
    try:
        loaded = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise ApiError(422, f"{field} {path!r}: no readable config.json ({exc})") from exc
    if not isinstance(loaded, dict):
        raise ApiError(422, f"{field} {path!r}: config.json is not an object")
    _refuse_custom_code(loaded, field)
    files = [f for f in resolved.iterdir() if f.is_file()]
    pickled = [f.name for f in files if f.suffix in PICKLE_SUFFIXES]
    if pickled and not any(f.suffix == ".safetensors" for f in files):
        raise ApiError(
            422, f"{field} {path!r}: only pickle weights ({pickled[0]}); "
            "convert them to safetensors: user files are never unpickled",
        )
    return resolved


def checked_spec(spec: ModelSpec, settings: Settings) -> ModelSpec:
    """The spec with its directory resolved; raises ApiError for what is refused."""
    if spec.path is not None:
        return spec.model_copy(update={"path": str(model_dir(str(spec.path), settings))})
    if spec.config is not None:
        _refuse_custom_code(spec.config, "model.config")
    if spec.name is not None:
        entry = next((m for m in list_models() if m.name == spec.name), None)
        if entry is None:
            raise ApiError(422, f"model.name {spec.name!r} is not in the catalog (GET /v1/models)")
        if entry.params > settings.max_model_params:
            raise ApiError(
                422, f"{spec.name} has ~{entry.params} parameters; "
                f"the limit is {settings.max_model_params}",
            )
    return spec


def _dir_fingerprint(path: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file()
    )


def cache_key(spec: ModelSpec, options: ProfileOptions) -> str:
    """What identifies a profile: spec (with the directory's files), options, torch version."""
    identity = {
        "spec": spec.model_dump(mode="json"),
        "options": options.model_dump(mode="json"),
        "torch": torch_version(),
        "files": _dir_fingerprint(Path(spec.path)) if spec.path is not None else None,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
