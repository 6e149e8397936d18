"""POST/GET /v1/plans against stored profiles and inline problems."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from solver import knapsack
from solver.examples import llama_like_problem
from tests.app.service_helpers import store_profile, synthetic_profile

PROBLEM = {
    "candidates": [
        {"id": "a", "method": "lora", "gain": 3.0, "params": 10, "flops": 5.0},
        {"id": "b", "method": "lora", "gain": 2.0, "params": 6, "flops": 2.0},
        {"id": "c", "method": "bitfit", "gain": 1.0, "params": 5, "flops": 1.0},
    ],
    "budget": {"params": 12, "flops": 10},
}


def _is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


def test_inline_problem_is_solved_stored_and_listed(client: TestClient) -> None:
    r = client.post("/v1/plans", json={"problem": PROBLEM})
    assert r.status_code == 201, r.text
    plan = r.json()
    assert r.headers["location"] == f"/v1/plans/{plan['id']}"
    assert plan["plan"]["status"] == "optimal"
    assert sorted(plan["plan"]["selected"]) == ["b", "c"]
    assert plan["plan"]["memory_total_bytes"] is None  # an inline problem has no frozen weights to count
    assert plan["source"]["gains"] == {"problem": 3}
    assert client.get(r.headers["location"]).json() == plan
    problem = client.get(f"{r.headers['location']}/problem").json()
    assert [c["id"] for c in problem["candidates"]] == ["a", "b", "c"]
    listed = client.get("/v1/plans").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == plan["id"]


def test_relative_budget_against_a_stored_profile(client: TestClient, profile_id: str) -> None:
    body = {"profile_id": profile_id, "budget": {"params": "1%", "flops": "1%"}}
    r = client.post("/v1/plans", json=body)
    assert r.status_code == 201, r.text
    plan = r.json()["plan"]
    assert plan["params"] <= 1_000 and plan["flops"] <= 0.03e9
    assert plan["p"] == plan["params"] / 1_000
    assert list(plan["memory_breakdown"]) == ["weights", "trainable_state", "activations", "logits", "overhead"]
    assert plan["memory_total_bytes"] == sum(plan["memory_breakdown"].values())
    source = r.json()["source"]
    assert source["profile_id"] == profile_id and source["gains"] == {"profile": 9}
    assert client.get("/v1/plans", params={"profile_id": profile_id}).json()["total"] == 1


def test_gains_by_id_and_method_override_the_profile(client: TestClient, profile_id: str) -> None:
    gains = {
        "candidates": {"layer.2:bitfit": 100.0},
        "methods": {"lora": {"default": 0.5, "layers": {"1": 7.0}}, "bitfit": 0.0},
        "use_profile": False,
    }
    body = {"profile_id": profile_id, "budget": {"params": 700}, "gains": gains}
    r = client.post("/v1/plans", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["source"]["gains"] == {"candidate": 1, "method": 6, "method-layer": 2}
    assert "layer.2:bitfit" in r.json()["plan"]["selected"]
    assert any(s.startswith("layer.1.q:lora") for s in r.json()["plan"]["selected"])


def test_missing_gains_are_a_clear_422(client: TestClient, settings: Settings) -> None:
    pid = store_profile(settings.db, synthetic_profile(gains=False), key="no-gains")
    r = client.post("/v1/plans", json={"profile_id": pid, "budget": {"params": "1%"}})
    assert "no gain for 9 of 9 candidates" in _is_problem(r, 422)["detail"]
    body = {"profile_id": pid, "budget": {"params": "1%"}, "gains": {"methods": {"lora": 1.0}}}
    assert "no gain for 3 of 9" in _is_problem(client.post("/v1/plans", json=body), 422)["detail"]
    body["gains"]["methods"]["bitfit"] = 0.1
    assert client.post("/v1/plans", json=body).status_code == 201


def test_bad_plan_requests(client: TestClient, profile_id: str) -> None:
    bad = [
        {},
        {"problem": PROBLEM, "profile_id": profile_id},
        {"problem": PROBLEM, "budget": {"params": 1}},
        {"profile_id": profile_id},
        {"profile_id": profile_id, "budget": {"params": "lots"}},
        {"profile_id": profile_id, "budget": {"params": "-1%"}},
        {"profile_id": profile_id, "budget": {"params": 1}, "gains": {"candidates": {"x": 1}}},
        {"profile_id": profile_id, "budget": {"params": 1}, "gains": {"methods": {"ia3": 1}}},
        {"problem": {**PROBLEM, "candidates": PROBLEM["candidates"] * 2}},
        {"problem": {**PROBLEM, "objective": "speed"}},
    ]
    for body in bad:
        _is_problem(client.post("/v1/plans", json=body), 422)
    r = client.post("/v1/plans", json={"profile_id": "nope", "budget": {"params": 1}})
    assert "no profile" in _is_problem(r, 404)["detail"]
    _is_problem(client.get("/v1/plans/nope"), 404)
    _is_problem(client.get("/v1/plans/nope/problem"), 404)


def test_candidate_limit(settings: Settings) -> None:
    from app.main import create_app

    limited = settings.model_copy(update={"max_candidates": 2})
    with TestClient(create_app(limited, run_jobs=False)) as c:
        r = c.post("/v1/plans", json={"problem": PROBLEM})
        assert "the limit is 2" in _is_problem(r, 422)["detail"]


def test_idempotency_key_replays_the_first_response(client: TestClient) -> None:
    headers = {"Idempotency-Key": "retry-1"}
    first = client.post("/v1/plans", json={"problem": PROBLEM}, headers=headers)
    again = client.post("/v1/plans", json={"problem": PROBLEM}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert client.get("/v1/plans").json()["total"] == 1
    other = {**PROBLEM, "budget": {"params": 20, "flops": 10}}
    _is_problem(client.post("/v1/plans", json={"problem": other}, headers=headers), 422)
    fresh = client.post("/v1/plans", json={"problem": PROBLEM}, headers={"Idempotency-Key": "2"})
    assert fresh.json()["id"] != first.json()["id"]


def test_failed_request_does_not_consume_the_key(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k"}
    body = {"profile_id": "missing", "budget": {"params": 1}}
    _is_problem(client.post("/v1/plans", json=body, headers=headers), 404)
    _is_problem(client.post("/v1/plans", json=body, headers=headers), 404)


def test_an_equal_problem_reuses_the_optimal_plan(client: TestClient) -> None:
    first = client.post("/v1/plans", json={"problem": PROBLEM}).json()
    second = client.post("/v1/plans", json={"problem": PROBLEM}).json()
    assert not first["source"]["reused"] and second["source"]["reused"]
    assert second["plan"] == first["plan"] and second["id"] != first["id"]


def test_an_exportable_plan_keeps_to_one_peft_family_and_says_what_it_left_out(
    client: TestClient, profile_id: str
) -> None:
    import hashlib

    from profiler.methods.export import REASONS

    body = {"profile_id": profile_id, "budget": {"params": 1000}}
    everything = client.post("/v1/plans", json=body).json()
    assert any(c.endswith(":bitfit") for c in everything["plan"]["selected"]) and everything["source"]["exportable"] is None
    r = client.post("/v1/plans", json={**body, "exportable": "peft"})
    assert r.status_code == 201, r.text
    out = r.json()
    plan, exportable = out["plan"], out["source"]["exportable"]
    assert plan["status"] == "optimal" and plan["selected"] and all(":lora:" in c for c in plan["selected"])
    assert plan["gain"] < everything["plan"]["gain"]
    # the synthetic profile has 3 BitFit candidates of 32 parameters
    assert exportable == {"target": "peft", "family": "LORA",
                          "families": [{"family": "LORA", "methods": ["lora"], "status": "optimal",
                                        "value": plan["gain"]}],
                          "left_out": [{"methods": ["bitfit"], "count": 3, "params": 96, "reason": REASONS["bitfit"]}]}
    assert client.get(f"/v1/plans/{out['id']}").json() == out  # stored and read back
    assert client.get(f"/v1/plans/{out['id']}/peft-config").json()["complete"]
    # the stored problem is the LoRA part the plan solved, under the hash its source names
    problem = client.get(f"/v1/plans/{out['id']}/problem")
    assert {c["method"] for c in problem.json()["candidates"]} == {"lora"}
    assert hashlib.sha256(problem.content).hexdigest() == out["source"]["problem_sha256"]
    again = client.post("/v1/plans", json={**body, "exportable": "peft"}).json()
    assert again["source"]["reused"] and again["plan"] == plan and again["source"]["exportable"] == exportable


def test_bad_exportable_requests_are_a_422_naming_the_field(client: TestClient, profile_id: str) -> None:
    r = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": 1000}, "exportable": "pft"})
    assert _is_problem(r, 422)["detail"].startswith("body.exportable: ")
    bitfit_only = {**PROBLEM, "candidates": [PROBLEM["candidates"][2]]}
    r = client.post("/v1/plans", json={"problem": bitfit_only, "exportable": "peft"})
    assert _is_problem(r, 422)["detail"].startswith("exportable: peft can export none of the candidates: bitfit")


def test_a_plan_request_waiting_past_solve_wait_s_for_a_slot_is_a_503(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One slot, held by a solve that runs to its 2 s time limit (CP-SAT alone needs seconds on this problem);
    # a second request waits 0.3 s for it, then is told to retry.
    monkeypatch.setattr(knapsack, "_DP_GROUPS_PER_CLASS", 0.0)
    slow = llama_like_problem(3000, seed=1).model_dump(mode="json")
    app = create_app(settings.model_copy(update={"max_concurrent_solves": 1, "solve_wait_s": 0.3,
                                                 "solve_max_time_s": 2.0}), run_jobs=False)
    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/v1/plans", json={"problem": slow})
        deadline = time.monotonic() + 10
        while app.state.context.computing.borrowed_tokens == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        start = time.monotonic()
        waited = client.post("/v1/plans", json={"problem": PROBLEM})
        assert time.monotonic() - start >= 0.3
        body = _is_problem(waited, 503)
        assert waited.headers["retry-after"] == "1" and "all 1 plan-request slots" in body["detail"]
        done = first.result(timeout=30)
        assert done.status_code == 201 and done.json()["plan"]["status"] == "feasible"
        assert client.post("/v1/plans", json={"problem": PROBLEM}).status_code == 201


def test_a_problem_with_no_plan_found_within_the_time_limit_is_a_422_naming_the_limit(settings: Settings) -> None:
    # min_gain at 90 % of the per-layer best gains: no single candidate or greedy plan reaches it, and the
    # 1 ms limit passes before any search does.
    hard = llama_like_problem(3000, seed=0, objective="efficiency", min_gain_fraction=0.9).model_dump(mode="json")
    app = create_app(settings.model_copy(update={"solve_max_time_s": 0.001}), run_jobs=False)
    with TestClient(app) as client:
        body = _is_problem(client.post("/v1/plans", json={"problem": hard}), 422)
    assert "solve_max_time_s = 0.001 s" in body["detail"] and "min_gain" in body["detail"]
