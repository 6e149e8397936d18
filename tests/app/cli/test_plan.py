"""`peft-planner plan` on a problem the time limit cuts short: it says so, with the proven gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main as cli
from solver.examples import llama_like_problem
from tests.app.service_helpers import synthetic_profile


def test_an_unproven_plan_says_the_time_limit_stopped_it_and_its_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    problem = llama_like_problem(3000, seed=1)  # tens of seconds to prove (benchmarks.solve_random)
    path = tmp_path / "problem.json"
    path.write_text(problem.model_dump_json())
    assert cli(["plan", "--problem", str(path), "--max-time", "1.5", "--table"]) == 0
    out, err = capsys.readouterr()
    assert "solving (over a second)..." in err
    status = next(line for line in out.splitlines() if line.startswith("status "))
    assert status.startswith("status feasible (time limit reached, proven gap ")
    gap = float(status.split("proven gap ")[1].split(" %")[0])
    assert cli(["plan", "--problem", str(path), "--max-time", "1.5", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    plan = json.loads(out)
    assert err == "" and plan["status"] == "feasible" and plan["bound"] is not None
    # The bound is a true upper bound: the proven optimum (benchmarks/results/solve_random.json) lies below it.
    optimum = 27.637287
    assert plan["gain"] <= optimum + 1e-9 <= plan["bound"] + 1e-9
    assert 0 <= gap <= 100


def test_a_short_solve_prints_no_elapsed_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    problem = llama_like_problem(50)
    path = tmp_path / "problem.json"
    path.write_text(problem.model_dump_json())
    assert cli(["plan", "--problem", str(path), "--table"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "status optimal" in out


def test_a_latency_budget_caps_the_added_latency(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "profile.json"
    path.write_text(synthetic_profile().model_dump_json())
    base = ["plan", "--profile", str(path), "--budget-params", "100%", "--no-progress"]
    assert cli(base) == 0
    free = json.loads(capsys.readouterr().out)
    assert free["latency_ms"] > 1.0  # without the cap the plan adds more than the cap below allows
    assert cli([*base, "--budget-latency", "1.0"]) == 0
    capped = json.loads(capsys.readouterr().out)
    assert 0 < capped["latency_ms"] <= 1.0 and capped["gain"] < free["gain"]
    assert cli([*base, "--budget-latency", "0"]) == 2
    assert "latency_ms: Input should be greater than 0" in capsys.readouterr().err
