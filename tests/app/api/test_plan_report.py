"""GET /v1/plans/{id}/report: the HTML report of a stored plan, linked from the plan as `report_url`."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.settings import Settings
from profiler.gains.estimate import with_gains
from profiler.gains.prior import prior_gains
from tests.app.api.test_plans import PROBLEM
from tests.app.report_dom import ReportDom, read_report
from tests.app.service_helpers import store_profile, synthetic_profile


def _report(client: TestClient, body: dict) -> tuple[dict, dict, ReportDom]:
    """POST the plan; its API representation, its stored problem and its report (checked to be HTML)."""
    r = client.post("/v1/plans", json=body)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["report_url"] == f"/v1/plans/{plan['id']}/report"
    assert client.get(f"/v1/plans/{plan['id']}").json()["report_url"] == plan["report_url"]
    page = client.get(plan["report_url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    return plan, client.get(f"/v1/plans/{plan['id']}/problem").json(), read_report(page.text)


def test_report_of_a_profile_plan(client: TestClient, profile_id: str) -> None:
    plan, problem, dom = _report(client, {"profile_id": profile_id, "budget": {"params": 600}})
    selected = plan["plan"]["selected"]
    assert sorted(c["data-id"] for c in dom.cells) == sorted(selected) and len(selected) >= 3
    for cell in dom.cells:  # synthetic ids: "layer.{l}.q:lora:r{r}" and "layer.{l}:bitfit"
        layer = cell["data-id"].split(".")[1].split(":")[0]
        assert cell["data-row"] == f"layer {layer}"
        assert cell["data-column"] == ("q" if ":lora:" in cell["data-id"] else "bias")
    for axis in ("params", "flops", "memory_bytes", "latency_ms"):
        assert float(dom.bars[axis]["data-used"]) == plan["plan"][axis]
    assert float(dom.bars["params"]["data-limit"]) == problem["budget"]["params"] == 600
    assert float(dom.bars["flops"]["data-limit"]) == problem["budget"]["flops"] == 3e9
    assert "data-limit" not in dom.bars["memory_bytes"] and "no cap" in dom.bars["memory_bytes"]["text"]
    assert f"{plan['plan']['params']:,} of 600" in dom.bars["params"]["text"]
    assert "synthetic: 100,000 parameters, 3 layers" in dom.sections["summary"]
    assert "point(s)" in dom.sections["frontier"]
    assert f"GET /v1/plans/{plan['id']}/peft-config" in dom.sections["export"]
    assert "Not fully exportable" in dom.sections["export"] and "peft trains biases only globally" in dom.sections[
        "export"]
    assert "optimal" in dom.sections["solver"] and plan["source"]["problem_sha256"] in dom.sections["solver"]


def test_a_plan_on_the_prior_says_so(client: TestClient, settings: Settings) -> None:
    profile = synthetic_profile(gains=False)
    profile_id = store_profile(settings.db, with_gains(profile, prior_gains(profile.candidates)), key="prior")
    plan, _, dom = _report(client, {"profile_id": profile_id, "budget": {"params": 600}})
    assert plan["source"]["gains"] == {"prior": 9}
    assert "prior9" in dom.sections["gains"] and "rests, at least in part, on the documented prior" in dom.sections[
        "gains"]
    assert "cost to make is not recorded" in dom.sections["gains"]


def test_a_plan_carries_what_its_profiles_gains_cost(client: TestClient, settings: Settings) -> None:
    from profiler.gains.registry import fill_gains

    gained, _ = fill_gains(synthetic_profile(gains=False), "prior")
    profile_id = store_profile(settings.db, gained, key="prior-costed")
    plan, _, dom = _report(client, {"profile_id": profile_id, "budget": {"params": 600}})
    cost = plan["source"]["gain_cost"]
    assert cost["source"] == "prior" and cost["cost_share"] == 0 and cost["probes"] == 0
    assert cost == gained.gain_cost.model_dump(mode="json")
    assert "cost_share 0.000" in dom.sections["gains"] and "(prior)" in dom.sections["gains"]


def test_an_inline_problem_plan_gets_a_report_saying_what_it_lacks(client: TestClient) -> None:
    plan, _, dom = _report(client, {"problem": PROBLEM})
    assert sorted(c["data-id"] for c in dom.cells) == sorted(plan["plan"]["selected"]) == ["b", "c"]
    assert {c["data-column"] for c in dom.cells} == {"b", "bias"}
    assert float(dom.bars["params"]["data-limit"]) == PROBLEM["budget"]["params"]
    assert "Not exportable" in dom.sections["export"] and "an inline problem" in dom.sections["summary"]
    assert "problem3" in dom.sections["gains"]


def test_an_unknown_plan_has_no_report(client: TestClient) -> None:
    r = client.get("/v1/plans/missing/report")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "no plan with id 'missing'"


def test_the_report_is_in_the_api_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/v1/plans/{plan_id}/report"]["get"]
    assert "HTML report" in route["summary"] and "text/html" in route["responses"]["200"]["content"]
    assert "report_url" in spec["components"]["schemas"]["PlanOut"]["required"]
