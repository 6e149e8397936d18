"""Hostile and careless input: every case is a 4xx problem+json at request time, nothing unreadable is stored,
reads never 500, no user file is unpickled. (`benchmarks/hostile_input.py` replays CASES against a real
server and reports each answer's latency.)"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.main import create_app
from app.settings import Settings
from profiler.errors import ProfileError
from profiler.training.task import load_encoder
from tests.tiny import TINY_BERT

OPTIONS = {"methods": ["lora"], "ranks": [2], "batch_size": 1, "seq_len": 8, "device": "cpu", "repeats": 1}
JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}


@dataclass(frozen=True)
class Case:
    """One hostile request: method, path, raw body, headers; the status expected and a phrase of its detail."""

    name: str
    method: str
    path: str
    body: bytes
    status: int
    phrase: str
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


def _profile(model: dict[str, Any], options: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"model": model, "options": options or OPTIONS}).encode()


def _jsonl(rows: list[str]) -> bytes:
    return "\n".join(rows).encode()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _good_rows(n: int = 6) -> list[str]:
    return [json.dumps({"text": f"text {i}", "label": i % 2}) for i in range(n)]


def _problem(site: str) -> bytes:
    """An inline problem whose one candidate's site is `site`, written into the JSON text as it is."""
    problem = {"candidates": [{"id": "a", "method": "lora", "gain": 1, "params": 1, "flops": 1, "site": "SITE"}],
               "budget": {"params": 1, "flops": 1}}
    return json.dumps({"problem": problem}).replace("SITE", site).encode()


CASES = [
    Case("surrogate label in JSONL", "POST", "/v1/datasets?format=jsonl",
         _jsonl(_good_rows() + ['{"text":"d","label":"\\ud800"}']), 422, "unpaired surrogate", NDJSON),
    Case("surrogate in model.config", "POST", "/v1/profiles",
         b'{"model": {"config": {"model_type": "bert", "note": "\\ud800"}}}', 422, "body.model.config.note"),
    Case("surrogate in a candidate site", "POST", "/v1/plans", _problem("\\udfff"), 422, "body.problem.candidates.0.site"),
    Case("surrogate in a key", "POST", "/v1/profiles", b'{"model": {"config": {"model_type": "bert", "\\ud800": 1}}}',
         422, "a key holds an unpaired surrogate"),
    Case("NaN in model.config", "POST", "/v1/profiles", b'{"model": {"config": {"model_type": "bert", "x": NaN}}}',
         422, "NaN is not a JSON number"),
    Case("1e999 in a budget", "POST", "/v1/plans",
         b'{"problem": {"candidates": [], "budget": {"params": 1e999, "flops": 1}}}', 422, "out of range"),
    Case("config nested 900 deep", "POST", "/v1/profiles",
         b'{"model": {"config": {"model_type": "bert", "x": ' + b"[" * 900 + b"]" * 900 + b"}}}", 422, "nested too deeply"),
    Case("101-digit seed", "POST", "/v1/profiles", _profile({"name": "bert-tiny"}, {**OPTIONS, "seed": 10**100}),
         422, "digits"),
    Case("39-digit seed", "POST", "/v1/profiles", _profile({"name": "bert-tiny"}, {**OPTIONS, "seed": 10**38}),
         422, "options.seed"),
    Case("JSONL label of 5,000 digits", "POST", "/v1/datasets?format=jsonl",
         _jsonl(_good_rows() + ['{"text":"d","label":' + "9" * 5000 + "}"]), 422, "digits", NDJSON),
    Case("unknown method", "POST", "/v1/profiles", _profile({"name": "bert-tiny"}, {**OPTIONS, "methods": ["zzz"]}),
         422, "options.methods.0: unknown method 'zzz'"),
    Case("invalid regex", "POST", "/v1/profiles",
         _profile({"name": "bert-tiny"}, {**OPTIONS, "target_modules": ["(("]}), 422, "not a regular expression"),
    Case("4,096 ranks", "POST", "/v1/profiles",
         _profile({"name": "bert-tiny"}, {**OPTIONS, "ranks": list(range(1, 4097))}), 422, "at most 32"),
    Case("a million layers", "POST", "/v1/profiles", _profile({"config": {**TINY_BERT, "num_hidden_layers": 1_000_000}}),
         422, "num_hidden_layers"),
    Case("hidden size 1e6", "POST", "/v1/profiles", _profile({"config": {**TINY_BERT, "hidden_size": 1_000_000}}),
         422, "hidden_size"),
    Case("a config over the size limit", "POST", "/v1/profiles",
         _profile({"config": {**TINY_BERT, "hidden_size": 16384, "num_hidden_layers": 512,
                             "intermediate_size": 65536}}),
         422, "PEFT_PLANNER_MAX_MODEL_PARAMS"),
    Case("NUL byte in model.path", "POST", "/v1/profiles", _profile({"path": "a\u0000b"}), 422, "model.path"),
    Case("300-character name in model.path", "POST", "/v1/profiles", _profile({"path": "n" * 300}), 422, "model.path"),
    Case("4 KB model.path", "POST", "/v1/profiles", _profile({"path": "/".join(["d" * 200] * 20)}), 422, "model.path"),
    Case("symlink loop in model.path", "POST", "/v1/profiles", _profile({"path": "loop"}), 422, "model.path"),
    Case("pickle beside a decoy .safetensors", "POST", "/v1/profiles", _profile({"path": "decoy"}), 422, "pickle"),
    Case("pickle beside model.safetensors", "POST", "/v1/profiles", _profile({"path": "both"}), 422, "pickle"),
    Case("symlink loop in task.model_path", "POST", "/v1/profiles/{profile_id}/gains",
         json.dumps({"source": "gradient", "task": {"dataset_id": "{dataset_id}", "model_path": "loop"}}).encode(),
         422, "task.model_path"),
    Case("NPZ labels of 2**64-1", "POST", "/v1/datasets?format=npz",
         _npz(x=np.zeros((6, 2), np.float32), y=np.array([0, 1, 0, 1, 0, 2**64 - 1], np.uint64)), 422, "int64",
         {"content-type": "application/octet-stream"}),
    Case("NPZ features of shape (8, 0)", "POST", "/v1/datasets?format=npz",
         _npz(x=np.zeros((8, 0), np.float32), y=np.array([0, 1] * 4)), 422, "empty feature axis",
         {"content-type": "application/octet-stream"}),
    Case("surrogate in the frontier's gains", "GET", "/v1/profiles/{profile_id}/frontier?gains=%7B%22methods%22%3A%7B%22%5Cud800%22%3A1%7D%7D",
         b"", 422, "query.gains"),
]


def make_models(root: Path) -> None:
    """The model directories the cases name: a symlink loop, pickles beside safetensors files."""
    (root / "loop").symlink_to(root / "loop")
    config = json.dumps(TINY_BERT)
    for name, files in {"decoy": ["x.safetensors", "pytorch_model.bin"],
                        "both": ["model.safetensors", "pytorch_model.bin"]}.items():
        folder = root / name
        folder.mkdir()
        (folder / "config.json").write_text(config)
        for f in files:
            (folder / f).write_bytes(b"")


def fill(case: Case, ids: dict[str, str]) -> tuple[str, bytes]:
    """The case's path and body with stored ids put in."""
    path, body = case.path, case.body
    for key, value in ids.items():
        path, body = path.replace(f"{{{key}}}", value), body.replace(f"{{{key}}}".encode(), value.encode())
    return path, body


def stored_ids(client: Any) -> dict[str, str]:
    """A stored profile (synthetic) and an uploaded dataset, for the cases with path parameters."""
    from tests.app.service_helpers import store_profile, synthetic_profile

    settings = client.app.state.context.settings
    dataset = client.post("/v1/datasets?format=jsonl", content=_jsonl(_good_rows()), headers=NDJSON).json()["id"]
    return {"profile_id": store_profile(settings.db, synthetic_profile()), "dataset_id": dataset}


@pytest.fixture
def hostile(settings: Settings, client: TestClient) -> dict[str, str]:
    assert settings.models_root is not None
    make_models(settings.models_root)
    return stored_ids(client)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_case_is_a_problem_naming_what_is_wrong(case: Case, client: TestClient, hostile: dict[str, str]) -> None:
    path, body = fill(case, hostile)
    response = client.request(case.method, path, content=body or None, headers=case.headers)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert case.phrase in response.json()["detail"], response.json()["detail"]


def test_after_every_case_every_list_and_row_reads_back(settings: Settings, client: TestClient,
                                                       hostile: dict[str, str]) -> None:
    for case in CASES:
        path, body = fill(case, hostile)
        client.request(case.method, path, content=body or None, headers=case.headers)
    for url in ("/v1/datasets", "/v1/profiles", "/v1/plans", "/v1/models", "/v1/methods"):
        assert client.get(url).status_code == 200, url
    assert client.get(f"/v1/datasets/{hostile['dataset_id']}").status_code == 200
    assert client.get(f"/v1/profiles/{hostile['profile_id']}").status_code == 200
    assert client.get("/v1/datasets").json()["total"] == 1  # only the good upload was stored


def test_a_value_stored_before_these_checks_still_reads_back(settings: Settings, client: TestClient) -> None:
    from sqlalchemy.orm import Session

    from app.store import create_store_engine
    from app.store.tables import JobRow, new_id

    engine = create_store_engine(settings.db)
    with Session(engine) as session:
        job = JobRow(id=new_id(), state="failed", spec={"config": {"model_type": "bert", "x": "\ud800"}}, options={},
                     cache_key="k", error="old")
        session.add(job)
        session.commit()
        job_id = job.id
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200 and response.json()["model"]["config"]["x"] == "\ud800"
    engine.dispose()


def test_json_lines_split_only_at_newlines(client: TestClient) -> None:
    rows = [json.dumps({"text": f"one\u2028line {i}", "label": i % 2}) for i in range(6)]
    r = client.post("/v1/datasets?format=jsonl", content=_jsonl(rows), headers=NDJSON)
    assert r.status_code == 201 and r.json()["summary"]["examples"] == 6


def test_errors_and_job_bodies_name_paths_relative_to_the_models_root(settings: Settings, client: TestClient) -> None:
    assert settings.models_root is not None
    make_models(settings.models_root)
    root = str(settings.models_root)
    folder = settings.models_root / "ok"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_BERT))
    (folder / "model.safetensors").write_bytes(b"")
    for path in ("decoy", "loop", "missing", root + "/decoy"):
        r = client.post("/v1/profiles", content=_profile({"path": path}), headers=JSON)
        assert r.status_code == 422 and root not in r.text, r.text
    job = client.post("/v1/profiles", content=_profile({"path": root + "/ok"}), headers=JSON)
    assert job.status_code == 202 and job.json()["model"]["path"] == "ok"
    assert root not in client.get(job.headers["location"]).text


def test_the_bearer_scheme_is_case_insensitive(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_key": SecretStr("s3cret")})
    with TestClient(create_app(keyed, run_jobs=False)) as c:
        for header in ("Bearer s3cret", "bearer s3cret", "BEARER  s3cret"):
            assert c.get("/v1/plans", headers={"Authorization": header}).status_code == 200, header
        for header in ("Basic s3cret", "bearer s3cre", "s3cret"):
            assert c.get("/v1/plans", headers={"Authorization": header}).status_code == 401, header


class _Payload:
    """A pickle that, when loaded, writes a marker file: the proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "unpickled"))


def test_no_code_path_unpickles_a_user_file(tmp_path: Path, settings: Settings, client: TestClient) -> None:
    assert settings.models_root is not None
    marker = tmp_path / "MARKER"
    folder = settings.models_root / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_BERT))
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    (folder / "decoy.safetensors").write_bytes(b"")
    r = client.post("/v1/profiles", content=_profile({"path": "evil"}), headers=JSON)
    assert r.status_code == 422 and "pickle" in r.json()["detail"]
    with pytest.raises(ProfileError, match="pickle"):
        load_encoder(str(folder))
    (folder / "model.safetensors").write_bytes(b"")  # a decoy by the right name changes nothing
    with pytest.raises(ProfileError, match="pickle"):
        load_encoder(str(folder))
    assert not marker.exists()


def test_the_cli_refuses_a_problem_nested_10000_deep_in_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 10_000 + "]" * 10_000)
    done = subprocess.run([sys.executable, "-m", "app.cli", "plan", "--problem", str(deep)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "nested too deeply" in done.stderr, done.stderr


def test_a_one_layer_bert_profiles() -> None:
    from profiler import ModelSpec, ProfileOptions, profile_model

    config = {"model_type": "bert", "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
              "intermediate_size": 64, "vocab_size": 100}
    profile = profile_model(ModelSpec(config=config), ProfileOptions(**OPTIONS))
    assert profile.model.num_layers == 1 and [la.path for la in profile.layers] == ["encoder.layer.0"]
