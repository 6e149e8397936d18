"""Every script in examples/ runs from the repository root and prints what it promises."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.servers import ROOT


def run(script: str) -> str:
    """Run examples/`script` with this interpreter from the repository root; its stdout."""
    done = subprocess.run([sys.executable, f"examples/{script}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_solve_problem_picks_one_rank_per_module_within_budget() -> None:
    out = run("solve_problem.py")
    assert out.startswith("status optimal, gain 2.5, params 13,312")
    assert out.split("\n")[1:4] == ["  layers.0.q_proj:lora:r4", "  layers.1.v_proj:lora:r8",
                                    "  layers.1.norm:norm_affine"]


def test_profile_and_plan_prints_an_optimal_plan_within_two_percent() -> None:
    out = run("profile_and_plan.py")
    assert "candidates on bert-tiny" in out and "status optimal" in out
    p = float(out.split("(p=")[1].split(")")[0])
    assert 0 < p <= 1.0


def test_plan_export_peft_trains_exactly_the_plans_parameters() -> None:
    pytest.importorskip("peft")
    out = run("plan_export_peft.py")
    assert "status optimal" in out and "peft trains" in out and out.rstrip().endswith(": equal")
    assert "rank_pattern={'encoder\\\\.layer\\\\.3\\\\.attention\\\\.self\\\\.value': 8}" in out


def test_train_with_trainer_trains_every_planned_tensor() -> None:
    pytest.importorskip("peft")
    out = run("train_with_trainer.py")
    assert "(equal)" in out, out
    moved = out.split("tensors moved: ")[1].split(";")[0]
    done, of = moved.split(" of ")
    assert int(done) == int(of) > 0, out
