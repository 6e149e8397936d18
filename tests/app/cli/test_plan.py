"""`peft-planner plan` on a problem the time limit cuts short: it says so, with the proven gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main as cli
from solver.examples import llama_like_problem


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
