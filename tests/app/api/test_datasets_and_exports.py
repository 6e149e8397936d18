"""Service: dataset uploads, the peft-config export of a plan, gain provenance in plans; the export CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.cli import main as cli
from app.main import create_app
from app.settings import Settings
from profiler.gains.estimate import with_gains
from profiler.gains.prior import prior_gains
from tests.app.service_helpers import store_profile, synthetic_profile


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    root = tmp_path / "models"
    root.mkdir()
    return Settings(db=str(tmp_path / "service.db"), models_root=root, max_body_bytes=64 * 1024)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, run_jobs=False)) as c:
        yield c


def test_upload_jsonl_dataset_then_read_it(client: TestClient) -> None:
    body = "\n".join(json.dumps({"text": f"review {i}", "label": "fresh" if i % 3 else "rotten"}) for i in range(9))
    r = client.post("/v1/datasets?name=reviews", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["summary"] == {"kind": "text", "task": "classification", "examples": 9, "classes": ["fresh", "rotten"], "class_counts": [6, 3]}
    assert r.headers["Location"] == f"/v1/datasets/{out['id']}"
    assert client.get(r.headers["Location"]).json() == out
    page = client.get("/v1/datasets").json()
    assert page["total"] == 1 and page["items"] == [out]


def test_upload_prompt_completion_dataset(client: TestClient) -> None:
    body = "\n".join(json.dumps({"prompt": f"{i} + {i} =", "completion": str(2 * i)}) for i in range(6))
    r = client.post("/v1/datasets", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 201, r.text
    assert r.json()["summary"] == {"kind": "completion", "task": "causal_lm", "examples": 6,
                                   "completion_chars": {"min": 1, "max": 2, "mean": 1.2}}


def test_upload_npz_dataset(client: TestClient) -> None:
    buf = io.BytesIO()
    np.savez(buf, x=np.ones((6, 2, 2)), y=np.array([0, 1, 2, 0, 1, 2]))
    r = client.post("/v1/datasets?format=npz", content=buf.getvalue(),
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201 and r.json()["summary"]["shape"] == [2, 2]


@pytest.mark.parametrize(("body", "fmt", "status", "detail"), [
    (b'{"text": "a", "label": 1.5}', "jsonl", 422, "\"label\" must be"),
    (b'{"prompt": "2+2?", "completion": ""}', "jsonl", 422, "line 1: \"completion\" must be a non-empty string"),
    (b"not an archive", "npz", 422, "not a readable"),
    (b"x" * (65 * 1024), "jsonl", 413, ""),
])
def test_bad_uploads_are_problems(client: TestClient, body: bytes, fmt: str, status: int, detail: str) -> None:
    r = client.post(f"/v1/datasets?format={fmt}", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json")
    assert detail in r.json()["detail"]
    assert client.get("/v1/datasets/nope").status_code == 404


def test_plan_peft_config_endpoint(client: TestClient, settings: Settings) -> None:
    profile_id = store_profile(settings.db, synthetic_profile())
    r = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": 600}})
    assert r.status_code == 201, r.text
    plan = r.json()
    out = client.get(f"/v1/plans/{plan['id']}/peft-config").json()
    lora = [i for i in plan["plan"]["selected"] if ":lora:" in i]
    assert out["exported"] == lora and {u["id"] for u in out["unsupported"]} == set(plan["plan"]["selected"]) - set(lora)
    assert out["complete"] is (len(lora) == len(plan["plan"]["selected"]))
    assert sorted(out["configs"][0]["target_modules"]) == sorted(i.split(":")[0] for i in lora)
    assert client.get("/v1/plans/missing/peft-config").status_code == 404


def test_plan_source_says_it_rests_on_a_prior(client: TestClient, settings: Settings) -> None:
    profile = synthetic_profile(gains=False)
    profile_id = store_profile(settings.db, with_gains(profile, prior_gains(profile.candidates)))
    r = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": 600}})
    assert r.status_code == 201, r.text
    assert r.json()["source"]["gains"] == {"prior": len(profile.candidates)}
    r = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": 600},
                                       "gains": {"methods": {"bitfit": 0.2}}})
    assert r.json()["source"]["gains"] == {"method": 3, "prior": 6}


def test_export_cli_writes_a_peft_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("peft")
    plan = tmp_path / "plan.json"
    ids = ["encoder.layer.0.attention.self.query:lora:r4", "encoder.layer.1.attention.self.query:lora:r8",
           "encoder.layer.1.output.dense:adapter:b16"]
    plan.write_text(json.dumps({"plan": {"selected": ids}}))
    assert cli(["export", str(plan), "-o", str(tmp_path / "out")]) == 2  # part of the plan would be dropped
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "leaves out 1 of 3 selected candidates" in err and "--allow-partial" in err
    assert not (tmp_path / "out").exists()
    assert cli(["export", str(plan), "-o", str(tmp_path / "out"), "--allow-partial"]) == 0
    captured = capsys.readouterr()
    assert "bottleneck adapters have no peft config" in captured.err
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] in (4, 8) and len(config["rank_pattern"]) == 1
    plan.write_text(json.dumps({"selected": []}))
    assert cli(["export", str(plan), "-o", str(tmp_path / "x")]) == 2
    assert "selects nothing" in capsys.readouterr().err
