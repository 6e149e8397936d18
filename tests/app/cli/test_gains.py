"""`peft-planner gains` on a profile JSON: the prior, gradient, probe and cheap gains on a tiny BERT and a JSONL file,
with the cost each printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main as cli
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.schema import Profile
from tests.app.service_helpers import PROFILE_OPTIONS, save_tiny_bert, toy_jsonl


def _tiny_bert_and_profile(tmp_path: Path) -> tuple[Path, Path]:
    """A saved tiny BERT, its profile, and toy data beside them (data.jsonl); the model and profile paths."""
    model = tmp_path / "tiny-bert"
    save_tiny_bert(model)
    profile = tmp_path / "profile.json"
    profile.write_text(profile_model(ModelSpec(path=str(model)), ProfileOptions(**PROFILE_OPTIONS)).model_dump_json())
    (tmp_path / "data.jsonl").write_text(toy_jsonl(80))
    return model, profile


def test_gains_cli_fills_a_profile(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model, profile = _tiny_bert_and_profile(tmp_path)
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
    assert "--source probe writes no report" in capsys.readouterr().err
    assert cli(["gains", str(profile), "--source", "prior", "--probes", "1"]) == 2
    assert "--probes takes a count" in capsys.readouterr().err


def test_gains_cli_runs_a_cheap_source_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model, profile = _tiny_bert_and_profile(tmp_path)
    data = ["--model", str(model), "--data", str(tmp_path / "data.jsonl"), "--steps", "4", "--batch", "8"]
    capsys.readouterr()
    assert cli(["gains", str(profile), "--source", "activation", *data, "--probes", "1",
                "--report", str(tmp_path / "report.json"), "-o", str(tmp_path / "activation.json")]) == 0
    err = capsys.readouterr().err
    gained = Profile.model_validate_json((tmp_path / "activation.json").read_text())
    assert {c.gain_source for c in gained.candidates} == {"activation"}
    cost = gained.gain_cost
    assert cost is not None and cost.probes == 2 and cost.run_steps == 4 and cost.run_batch_size == 8
    assert f"cost_share {cost.cost_share:.3f} of one 4-step x 8 fine-tuning run" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["probes"] == 1 and report["cost"]["cost_share"] == cost.cost_share
    assert cli(["gains", str(profile), "--source", "weight-condition", "-o", str(tmp_path / "kappa.json")]) == 0
    kappa = Profile.model_validate_json((tmp_path / "kappa.json").read_text())
    assert kappa.gain_cost.cost_share == 0 and all(c.gain_details["condition_number"] for c in kappa.candidates)
