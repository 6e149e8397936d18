"""`peft-planner gains` on a profile JSON: the prior, and gradient gains on a tiny BERT and a JSONL file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main as cli
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.schema import Profile
from tests.app.service_helpers import PROFILE_OPTIONS, save_tiny_bert, toy_jsonl


def test_gains_cli_fills_a_profile(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "tiny-bert"
    save_tiny_bert(model)
    profile = tmp_path / "profile.json"
    profile.write_text(profile_model(ModelSpec(path=str(model)), ProfileOptions(**PROFILE_OPTIONS)).model_dump_json())
    (tmp_path / "data.jsonl").write_text(toy_jsonl(80))
    assert cli(["gains", str(profile), "--source", "prior", "-o", str(tmp_path / "prior.json")]) == 0
    prior = Profile.model_validate_json((tmp_path / "prior.json").read_text())
    assert {c.gain_source for c in prior.candidates} == {"prior"}
    assert cli(["gains", str(profile), "--model", str(model), "--data", str(tmp_path / "data.jsonl"), "--steps", "5",
                "--batch", "8", "--report", str(tmp_path / "report.json"), "-o", str(tmp_path / "gradient.json")]) == 0
    gradient = Profile.model_validate_json((tmp_path / "gradient.json").read_text())
    assert {c.gain_source for c in gradient.candidates} == {"gradient"}
    assert json.loads((tmp_path / "report.json").read_text())["probe_config"]["steps"] == 5
    data = ["--model", str(model), "--data", str(tmp_path / "data.jsonl"), "--steps", "3", "--batch", "8"]
    assert cli(["gains", str(profile), "--source", "probe", *data, "-o", str(tmp_path / "probe.json")]) == 0
    probed = Profile.model_validate_json((tmp_path / "probe.json").read_text())
    assert {c.gain_source for c in probed.candidates} == {"probe"}
    assert all(c.gain_details["steps"] == 3 for c in probed.candidates)
    capsys.readouterr()
    assert cli(["gains", str(profile), "--model", str(model)]) == 2
    assert "--model and --data together" in capsys.readouterr().err
    assert cli(["gains", str(profile), "--source", "probe", *data, "--report", str(tmp_path / "r.json")]) == 2
    assert "with --source gradient" in capsys.readouterr().err
