"""A new user's first hour: every edge answers with what is wrong and what to do, in one line (CLI: exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli import main as cli
from app.settings import Settings
from profiler import ModelSpec, ProfileOptions, profile_model
from tests.app.service_helpers import store_profile, synthetic_profile
from tests.tiny import TINY_BERT

FAST = {"methods": ["lora", "bitfit"], "ranks": [2, 4], "batch_size": 1, "seq_len": 8, "repeats": 1, "warmup": 0,
        "device": "cpu"}


def one_line_error(capsys: pytest.CaptureFixture, code: int) -> str:
    """The stderr of a CLI call that failed with `code` as one line."""
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def bert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A profile of TINY_BERT (LoRA r2/r4, BitFit) and a plan of it that holds BitFit candidates."""
    folder = tmp_path_factory.mktemp("first-hour")
    profile = profile_model(ModelSpec(config=TINY_BERT), ProfileOptions(**FAST))
    (folder / "profile.json").write_text(profile.model_dump_json())
    gains = folder / "gains.json"
    gains.write_text(json.dumps({"methods": {"lora": 1.0, "bitfit": 0.5}}))
    return folder / "profile.json", gains


def test_export_refuses_to_drop_bitfit_and_says_how_much(bert_files, tmp_path: Path, capsys) -> None:
    profile, gains = bert_files
    assert cli(["plan", "--profile", str(profile), "--gains", str(gains), "--budget-params", "5%"]) == 0
    plan = tmp_path / "plan.json"
    plan.write_text(capsys.readouterr().out)
    selected = json.loads(plan.read_text())["selected"]
    bitfit = [cid for cid in selected if cid.endswith(":bitfit")]
    assert bitfit
    params = {c["id"]: c["params"] for c in json.loads(profile.read_text())["candidates"]}
    code = cli(["export", str(plan), "-o", str(tmp_path / "out"), "--profile", str(profile)])
    err = one_line_error(capsys, code)
    assert f"leaves out {len(bitfit)} of {len(selected)} selected candidates" in err
    assert f"({sum(params[c] for c in bitfit):,} trainable parameters)" in err and "--allow-partial" in err
    assert not (tmp_path / "out").exists()


def test_a_budget_below_the_cheapest_candidate_names_both_numbers(bert_files, capsys) -> None:
    profile, gains = bert_files
    err = one_line_error(capsys, cli(["plan", "--profile", str(profile), "--gains", str(gains),
                                      "--budget-params", "5"]))
    cheapest = min(c["params"] for c in json.loads(profile.read_text())["candidates"])
    assert "'5' allows 5 trainable parameters" in err and f"cheapest candidate's {cheapest:,}" in err
    assert "write it with % for a share" in err


def test_an_incomplete_config_names_the_missing_shape_keys(tmp_path: Path, capsys) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    err = one_line_error(capsys, cli(["profile", "--model", str(config), "--timing", "none"]))
    assert "no num_hidden_layers, num_attention_heads, intermediate_size, vocab_size" in err
    assert "num_hidden_layers=12" in err and "--allow-defaults" in err
    out = tmp_path / "profile.json"
    assert cli(["profile", "--model", str(config), "--timing", "none", "--allow-defaults", "--methods", "bitfit",
                "--seq-len", "8", "--batch", "1", "--no-progress", "-o", str(out)]) == 0
    notes = json.loads(out.read_text())["notes"]
    assert any("left to transformers' defaults: num_hidden_layers=12" in note for note in notes)


def test_an_incomplete_config_is_refused_at_request_time(client: TestClient) -> None:
    r = client.post("/v1/profiles", json={"model": {"config": {"model_type": "llama", "hidden_size": 64}}})
    assert r.status_code == 422 and "model.config: no num_hidden_layers" in r.json()["detail"]
    assert "options.allow_defaults" in r.json()["detail"]
    r = client.post("/v1/profiles", json={"model": {"config": {"model_type": "llama", "hidden_size": 64}},
                                          "options": {"allow_defaults": True}})
    assert r.status_code == 202


def test_a_missing_model_directory_is_said_so(capsys) -> None:
    err = one_line_error(capsys, cli(["profile", "--model", "./no-such-model-dir"]))
    assert "no such directory or file: ./no-such-model-dir" in err


def test_list_models_version_and_defaults_in_help(capsys) -> None:
    assert cli(["profile", "--list-models"]) == 0
    assert "bert-base" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        cli(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("peft-planner ")
    with pytest.raises(SystemExit):
        cli(["profile", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default 4,8,16)", "(default 5)", "default auto: the config's torch_dtype, else float32",
                    "ia3 is opt-in", "(default 16,64)"):
        assert default in text, default


def test_an_empty_plan_says_no_gain_is_positive_and_where_gains_came_from(client: TestClient,
                                                                          settings: Settings) -> None:
    profile = synthetic_profile()
    zero = profile.model_copy(update={"candidates": [c.model_copy(update={"gain": 0.0, "gain_source": "gradient"})
                                                     for c in profile.candidates]})
    profile_id = store_profile(settings.db, zero)
    plan = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": "50%"}}).json()
    assert plan["plan"]["selected"] == []
    (note,) = plan["source"]["notes"]
    assert "no candidate has a positive gain (gains from gradient (9))" in note


def test_a_plan_on_one_rank_says_the_gains_do_not_tell_ranks_apart(client: TestClient, settings: Settings) -> None:
    profile_id = store_profile(settings.db, synthetic_profile())
    plan = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": "50%"},
                                          "gains": {"methods": {"lora": 1.0, "bitfit": 0.1}}}).json()
    assert any("every lora candidate takes setting 4: the gains are the same at every setting of a site (4, 8)"
               in note for note in plan["source"]["notes"]), plan["source"]["notes"]
    again = client.get(plan["report_url"].replace("/report", "")).json()
    assert again["source"]["notes"] == plan["source"]["notes"]


def test_jobs_are_listed_with_filters_and_paging(client: TestClient, settings: Settings) -> None:
    profile_id = store_profile(settings.db, synthetic_profile())
    ids = [client.post(f"/v1/profiles/{profile_id}/gains", json={"source": "prior"}).json()["id"]]
    ids.append(client.post("/v1/profiles", json={"model": {"config": TINY_BERT}, "options": FAST}).json()["id"])
    client.delete(f"/v1/jobs/{ids[0]}")
    page = client.get("/v1/jobs").json()
    assert page["total"] == 2 and [j["id"] for j in page["items"]] == ids[::-1]
    assert [j["id"] for j in client.get("/v1/jobs", params={"kind": "gains"}).json()["items"]] == ids[:1]
    assert [j["id"] for j in client.get("/v1/jobs", params={"state": "queued"}).json()["items"]] == ids[1:]
    assert client.get("/v1/jobs", params={"limit": 1, "offset": 1}).json()["items"][0]["id"] == ids[0]
    assert client.get("/v1/jobs", params={"kind": "nope"}).status_code == 422
