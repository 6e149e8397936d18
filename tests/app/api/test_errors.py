"""Every error is problem+json: bad bodies, oversize bodies, unknown routes, auth."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.main import create_app
from app.settings import Settings


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def test_unparseable_and_invalid_bodies(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    body = _problem(client.post("/v1/plans", content=b"{not json", headers=headers), 422)
    assert body["errors"][0]["type"] == "json_invalid"
    body = _problem(client.post("/v1/plans", json={"problem": {"candidates": []}}), 422)
    assert body["detail"].startswith("body.problem")
    _problem(client.post("/v1/profiles", json={"model": {}}), 422)
    _problem(client.get("/v1/plans", params={"limit": 0}), 422)


def test_oversize_bodies_get_413(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 1024})
    with TestClient(create_app(small, run_jobs=False)) as c:
        payload = b'{"problem": "' + b"x" * 2000 + b'"}'
        body = _problem(c.post("/v1/plans", content=payload,
                               headers={"content-type": "application/json"}), 413)
        assert "1024 bytes" in body["detail"]

        def chunks():
            yield payload[:1000]
            yield payload[1000:]

        _problem(c.post("/v1/plans", content=chunks(),
                        headers={"content-type": "application/json"}), 413)


def test_unknown_routes_and_methods(client: TestClient) -> None:
    _problem(client.get("/v2/nothing"), 404)
    response = client.put("/v1/plans")
    _problem(response, 405)
    assert response.headers["allow"] == "GET, POST"


def test_api_key(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_key": SecretStr("s3cret")})
    with TestClient(create_app(keyed, run_jobs=False)) as c:
        response = c.get("/v1/plans")
        _problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        _problem(c.get("/v1/plans", headers={"Authorization": "Bearer wrong"}), 401)
        assert c.get("/v1/plans", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200
        assert c.get("/openapi.json").status_code == 200


def test_openapi_declares_problem_json(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "ProblemDetail" in schema["components"]["schemas"]
    post = schema["paths"]["/v1/plans"]["post"]["responses"]
    for status in ("404", "422", "500"):
        assert list(post[status]["content"]) == ["application/problem+json"]
    assert client.get("/docs").status_code == 200
