"""/healthz, /readyz, /metrics, /v1/models, /v1/methods."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_health_and_readiness_without_runner(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


def test_metrics_count_requests_jobs_and_solves(client: TestClient, profile_id: str) -> None:
    client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": "1%"}})
    client.get("/v1/plans/unknown")
    text = client.get("/metrics").text
    assert 'peft_planner_http_requests_total{method="POST",route="/v1/plans",status="201"} 1.0' in text
    assert 'route="/v1/plans/{plan_id}",status="404"' in text
    assert 'peft_planner_jobs{state="queued"} 0.0' in text
    assert 'peft_planner_solve_seconds_count{objective="gain",status="optimal"} 1.0' in text
    assert "peft_planner_http_request_seconds_bucket" in text


def test_catalog_and_methods(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    assert "bert-base" in {m["name"] for m in models}
    methods = client.get("/v1/methods").json()
    assert "lora" in {m["name"] for m in methods}


def test_api_docs_work_offline(client: TestClient) -> None:
    """/docs and /redoc load every script, style and icon from the service itself, never from a CDN."""
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        assets = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", html.text)
        assert assets, page
        for asset in assets:
            assert not re.match(r"(?:https?:)?//", asset), (page, asset)
            assert client.get(asset).status_code == 200, asset
        assert "openapi.json" in html.text and not re.search(r"https?://", html.text)


def test_devices_and_an_unknown_target_device(client: TestClient) -> None:
    devices = {d["name"]: d for d in client.get("/v1/devices").json()}
    assert {"h100-sxm", "h200", "a100-80g", "a100-40g", "l40s", "l4", "rtx-4090"} <= set(devices)
    assert devices["h200"]["memory_gb"] == 141 and devices["h200"]["bandwidth_gbs"] == 4800
    r = client.post("/v1/profiles", json={"model": {"name": "bert-tiny"}, "options": {"target_device": "h300"}})
    assert r.status_code == 422 and "options.target_device: unknown device 'h300'; known: h100-sxm" in r.json()["detail"]
    custom = {**devices["l4"], "name": "my-l4"}
    r = client.post("/v1/profiles", json={"model": {"name": "bert-tiny"}, "options": {"target_device": custom}})
    assert r.status_code == 202
