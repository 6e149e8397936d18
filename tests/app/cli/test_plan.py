"""`peft-planner plan` on a problem the time limit cuts short: it says so, with the proven gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main as cli
from solver import knapsack
from solver.examples import llama_like_problem
from tests.app.service_helpers import synthetic_profile


def test_an_unproven_plan_says_the_time_limit_stopped_it_and_its_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the parts' dynamic program (a limit of 0 states), this problem's open part goes to CP-SAT,
    # which needs several seconds to prove it (6 s before the program, docs/benchmarks.md).
    monkeypatch.setattr(knapsack, "_DP_MAX_STATES", 0)
    problem = llama_like_problem(3000, seed=1)
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


def test_exportable_plans_say_what_they_left_out_and_export_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(synthetic_profile().model_dump_json())
    args = ["plan", "--profile", str(profile), "--budget-params", "1000", "--no-progress"]
    assert cli([*args, "--exportable", "peft", "--table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-5] == ("exportable to peft as LoRA + norms; left out 3 bitfit candidates (96 parameters): peft "
                         "trains biases only globally (bias='all' or 'lora_only'), not per module")
    assert lines[-3].startswith("status optimal") and ":bitfit" not in "\n".join(lines)
    assert cli([*args, "--exportable", "peft"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exportable"]["family"] == "LORA" and out["exportable"]["left_out"][0]["count"] == 3
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(out))
    pytest.importorskip("peft")
    assert cli(["export", str(plan), "-o", str(tmp_path / "adapter")]) == 0  # nothing dropped: no --allow-partial
    capsys.readouterr()
    assert cli(args) == 0
    plan.write_text(capsys.readouterr().out)
    assert cli(["export", str(plan), "-o", str(tmp_path / "all")]) == 2  # the unrestricted plan has BitFit
    assert "--exportable peft" in capsys.readouterr().err


def test_bad_or_unmet_exportable_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps({"candidates": [{"id": "a:bitfit", "method": "bitfit", "gain": 1.0, "params": 5,
                                                "flops": 1.0}], "budget": {"params": 9, "flops": 9}}))
    with pytest.raises(SystemExit) as exc:
        cli(["plan", "--problem", str(path), "--exportable", "pft"])
    assert exc.value.code == 2 and "--exportable: invalid choice: 'pft'" in capsys.readouterr().err
    assert cli(["plan", "--problem", str(path), "--exportable", "peft", "--no-progress"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("peft-planner plan: error: exportable: peft can export none of the candidates: bitfit")
