"""What a model directory must hold to be used: a config and safetensors weights, never a pickle.

Weights saved with `torch.save` (`.bin`, `.pt`, ...) are Python pickles: loading one runs whatever
code it names. A directory is usable only when it holds `model.safetensors` (or its sharded index)
by name and no file with a pickle suffix at all, so a decoy `.safetensors` beside a malicious
`pytorch_model.bin` is refused, and every load passes `use_safetensors=True`.
"""

from __future__ import annotations

from pathlib import Path

from profiler.errors import ProfileError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


def check_model_dir(path: Path, label: str) -> None:
    """Return if `path` holds config.json, safetensors weights and no pickle; else ProfileError naming `label`."""
    try:
        names = {entry.name for entry in path.iterdir() if entry.is_file()}
    except OSError as exc:
        raise ProfileError(f"{label}: cannot list the directory ({exc.strerror or type(exc).__name__})") from None
    if "config.json" not in names:
        raise ProfileError(f"{label}: no config.json")
    pickled = sorted(name for name in names if name.lower().endswith(PICKLE_SUFFIXES))
    if pickled:
        raise ProfileError(f"{label}: holds pickle file(s) {', '.join(pickled[:3])}; user files are never unpickled: "
                           "keep only safetensors weights (transformers' save_pretrained writes them)")
    if not names & set(SAFETENSORS_WEIGHTS):
        raise ProfileError(f"{label}: no model.safetensors (or model.safetensors.index.json)")
