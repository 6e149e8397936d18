"""`peft-planner report`: the same HTML report offline, from a plan JSON and its problem or profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli import main as cli
from tests.app.api.test_plans import PROBLEM
from tests.app.report_dom import ReportDom, read_report
from tests.app.service_helpers import synthetic_profile


def _run(tmp_path: Path, *args: str) -> ReportDom:
    out = tmp_path / "plan.html"
    assert cli(["report", *args, "-o", str(out)]) == 0
    return read_report(out.read_text())


@pytest.fixture
def api_plan(client: TestClient, profile_id: str, tmp_path: Path) -> tuple[dict, dict, Path, Path]:
    """A plan as GET /v1/plans/{id} returns it, its stored problem, and files of the plan and of its profile."""
    created = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": 600}}).json()
    plan, problem = created, client.get(f"/v1/plans/{created['id']}/problem").json()
    (tmp_path / "api-plan.json").write_text(json.dumps(plan))
    (tmp_path / "profile.json").write_text(synthetic_profile().model_dump_json())
    return plan, problem, tmp_path / "api-plan.json", tmp_path / "profile.json"


def test_an_api_plan_and_its_profile_rebuild_the_problem(api_plan, tmp_path: Path) -> None:
    plan, problem, plan_file, profile_file = api_plan
    dom = _run(tmp_path, str(plan_file), "--profile", str(profile_file))
    assert sorted(c["data-id"] for c in dom.cells) == sorted(plan["plan"]["selected"])
    assert float(dom.bars["params"]["data-limit"]) == problem["budget"]["params"]
    assert float(dom.bars["flops"]["data-limit"]) == problem["budget"]["flops"]
    assert f"Plan {plan['id']}" in dom.sections["summary"] and "synthetic" in dom.sections["summary"]
    assert "point(s)" in dom.sections["frontier"]


def test_a_profile_that_does_not_rebuild_the_problem_is_not_used_for_limits(api_plan, tmp_path: Path) -> None:
    plan, _, plan_file, profile_file = api_plan
    plan["source"]["problem_sha256"] = "0" * 64  # as if solved with gains given in the request
    plan_file.write_text(json.dumps(plan))
    dom = _run(tmp_path, str(plan_file), "--profile", str(profile_file))
    assert "data-limit" not in dom.bars["params"] and "limit unknown" in dom.bars["params"]["text"]
    assert "sha256 differs" in dom.sections["budgets"]
    assert sorted(c["data-id"] for c in dom.cells) == sorted(plan["plan"]["selected"])


def test_a_bare_plan_with_its_problem_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps(PROBLEM))
    assert cli(["plan", "--problem", str(problem)]) == 0
    plan = json.loads(capsys.readouterr().out)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    dom = _run(tmp_path, str(tmp_path / "plan.json"), "--problem", str(problem))
    assert sorted(c["data-id"] for c in dom.cells) == sorted(plan["selected"])
    for axis in ("params", "flops"):
        assert float(dom.bars[axis]["data-used"]) == plan[axis]
        assert float(dom.bars[axis]["data-limit"]) == PROBLEM["budget"][axis]
    assert "problem3" in dom.sections["gains"]
    assert "wrote" in capsys.readouterr().out


def test_a_bare_plan_alone_says_what_it_lacks(tmp_path: Path) -> None:
    plan = {"status": "optimal", "objective": "gain", "selected": ["model.layers.2.mlp.up_proj:lora:r8"], "gain": 1.0,
            "params": 10, "flops": 5.0, "latency_ms": 0.0, "memory_bytes": 0.0, "p": 0.5, "c": 0.5,
            "efficiency": 2.0, "bound": 1.0, "solve_ms": 1.0}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    dom = _run(tmp_path, str(tmp_path / "plan.json"))
    assert [(c["data-row"], c["data-column"]) for c in dom.cells] == [("layer 2", "up")]
    assert "limit unknown" in dom.bars["params"]["text"] and "--problem FILE" in dom.sections["frontier"]
    assert "Not recorded" in dom.sections["gains"]


def test_bad_inputs_are_one_line_errors(api_plan, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, _, plan_file, _ = api_plan
    other = tmp_path / "other.json"
    other.write_text(json.dumps(PROBLEM))
    out = str(tmp_path / "x.html")
    assert cli(["report", str(plan_file), "--problem", str(other), "-o", out]) == 2
    assert "is not the problem this plan solved" in capsys.readouterr().err
    assert cli(["report", str(other), "-o", out]) == 2
    assert "invalid plan" in capsys.readouterr().err
    assert not Path(out).exists()


def test_an_exportable_api_plan_and_its_profile_rebuild_its_familys_problem(
    client: TestClient, profile_id: str, tmp_path: Path
) -> None:
    created = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": 600},
                                             "exportable": "peft"}).json()
    problem = client.get(f"/v1/plans/{created['id']}/problem").json()
    (tmp_path / "api-plan.json").write_text(json.dumps(created))
    (tmp_path / "profile.json").write_text(synthetic_profile().model_dump_json())
    dom = _run(tmp_path, str(tmp_path / "api-plan.json"), "--profile", str(tmp_path / "profile.json"))
    assert float(dom.bars["params"]["data-limit"]) == problem["budget"]["params"]  # the sha256 matched
    assert sorted(c["data-id"] for c in dom.cells) == sorted(created["plan"]["selected"])
