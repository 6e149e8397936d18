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
    assert "--probes takes 0 to 3, with a source that takes a probe budget" in capsys.readouterr().err
    assert cli(["gains", str(profile), "--source", "activation", *data, "--probes", "4"]) == 2
    assert "--probes takes 0 to 3" in capsys.readouterr().err


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


def test_gradient_gains_on_a_causal_lm_from_prompt_completion_data_and_the_plan_trains_in_peft(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    peft = pytest.importorskip("peft")
    import torch
    from transformers import AutoModelForCausalLM

    from profiler.training.task import user_task
    from tests.tiny import save_tiny_llama, toy_completions

    model = tmp_path / "tiny-llama"
    save_tiny_llama(model)
    options = ProfileOptions(methods=["lora", "ia3", "norm_affine", "prompt_tuning"], ranks=[2, 4], prompt_lengths=[2],
                             batch_size=1, seq_len=8, device="cpu", repeats=1, warmup=0, task="causal_lm")
    profile = tmp_path / "profile.json"
    profile.write_text(profile_model(ModelSpec(path=str(model)), options).model_dump_json())
    data = toy_completions(60)
    rows = [json.dumps({"prompt": p, "completion": c}) for p, c in zip(data.prompts, data.completions, strict=True)]
    (tmp_path / "data.jsonl").write_text("\n".join(rows))
    args = ["--model", str(model), "--data", str(tmp_path / "data.jsonl"), "--steps", "5", "--batch", "8"]
    assert cli(["gains", str(profile), "--source", "gradient", *args, "-o", str(tmp_path / "gained.json")]) == 0
    gained = Profile.model_validate_json((tmp_path / "gained.json").read_text())
    assert {c.method for c in gained.candidates} == {"lora", "ia3", "norm_affine", "prompt_tuning"}
    assert {c.gain_source for c in gained.candidates} == {"gradient"} and all(c.gain >= 0 for c in gained.candidates)
    assert any(c.gain > 0 for c in gained.candidates if c.method == "lora")
    capsys.readouterr()
    assert cli(["plan", "--profile", str(tmp_path / "gained.json"), "--budget-params", "2000", "--exportable", "peft",
                "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    plan = out["plan"]
    assert plan["status"] == "optimal" and plan["selected"] and out["exportable"]["family"] == "LORA"
    (tmp_path / "plan.json").write_text(json.dumps(out))
    assert cli(["export", str(tmp_path / "plan.json"), "--profile", str(tmp_path / "gained.json"),
                "-o", str(tmp_path / "adapter")]) == 0
    base = AutoModelForCausalLM.from_pretrained(model, use_safetensors=True, local_files_only=True)
    tuned = peft.get_peft_model(base, peft.PeftConfig.from_pretrained(str(tmp_path / "adapter")))
    assert isinstance(tuned, peft.PeftModelForCausalLM)  # task_type CAUSAL_LM, from the causal_lm profile
    trainable = [p for p in tuned.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == plan["params"]
    batch, labels = user_task(str(model), data, validation=20).train.batch(torch.arange(16))
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = tuned(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.1


def test_gains_cli_refuses_data_of_the_other_task_kind(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.tiny import save_tiny_llama

    model = tmp_path / "tiny-llama"
    save_tiny_llama(model)
    options = ProfileOptions(methods=["lora"], ranks=[2], batch_size=1, seq_len=8, device="cpu", repeats=1, warmup=0,
                             timing="none", task="causal_lm")
    profile = tmp_path / "profile.json"
    profile.write_text(profile_model(ModelSpec(path=str(model)), options).model_dump_json())
    (tmp_path / "labelled.jsonl").write_text(toy_jsonl(20))
    capsys.readouterr()
    assert cli(["gains", str(profile), "--model", str(model), "--data", str(tmp_path / "labelled.jsonl")]) == 2
    assert 'holds {"text", "label"} rows, which train a classification model; the task is causal_lm' in \
        capsys.readouterr().err
