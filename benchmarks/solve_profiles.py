"""Solver benchmark on real profiles: exact plans against a HiGHS reference model in the same run.

    python -m benchmarks.solve_profiles [--models bert-base,llama-7b,llama-3-8b,llama-2-70b] [--quick]

Profiles (params, FLOPs and shared layer costs measured on the meta device,
`--timing none`) are cached in benchmarks/cache/. Each profile is planned
under four kinds of gains (prior; one gain per method; per method with a
layer profile; distinct per candidate) and params budgets 0.05 %-5 % (FLOPs
100 %). For the gain objective the same problem is also written as one MIP
(x per candidate, y per layer, y monotone, x <= y of its layer, at most one
per group) and solved by OR-Tools' HiGHS backend with a zero gap; the table
prints both times, their ratio and whether both proved the same optimum.
The efficiency objective (min_gain = 30 % of the gain optimum) has no MIP
form and is timed alone. Results: benchmarks/results/solve_profiles.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
from pathlib import Path

from app.planning.problem import problem_from_profile
from profiler.gains.prior import prior_gains
from profiler.schema import Profile
from solver import solve
from solver.examples import llama_like_problem
from solver.reference import highs_gain

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "cache"
RESULTS = ROOT / "benchmarks" / "results"
PROJECTIONS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
# name -> `peft-planner profile` arguments (shapes from the catalog or a config in benchmarks/configs).
MODELS = {
    "bert-base": ["--model", "bert-base", "--batch", "8", "--seq-len", "128"],
    "llama-7b": ["--model", "llama-7b", "--methods", "lora", "--ranks", "8,16,64", "--batch", "1", "--seq-len", "512"],
    "llama-3-8b": ["--model", "benchmarks/configs/llama-3-8b.json", "--methods", "lora", "--ranks", "8,16,64",
                   "--batch", "1", "--seq-len", "512"],
    "llama-2-70b": ["--model", "benchmarks/configs/llama-2-70b.json", "--methods", "lora", "--ranks", "4,8,16,32,64",
                    "--target-modules", PROJECTIONS, "--batch", "1", "--seq-len", "512"],
}
GAINS = ("prior", "per-method", "per-method-layers", "distinct")
BUDGETS = ("0.05%", "0.1%", "0.5%", "1%", "5%")
EFFICIENCY_BUDGETS = ("0.1%", "1%")
MIN_GAIN_SHARE = 0.3


def load_profile(name: str) -> Profile:
    """Return the cached profile of `name`, profiling it first when absent."""
    path = CACHE / f"{name}.json"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "app.cli", "profile", *MODELS[name], "--timing", "none", "--no-progress", "-o", str(path)]
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return Profile.model_validate_json(path.read_text())


def gain_spec(profile: Profile, kind: str) -> dict:
    """Return the `gains` of a plan request of one kind (prior gains are filled into the candidates)."""
    methods = sorted({c.method for c in profile.candidates})
    if kind == "prior":
        return {"candidates": {i: e.gain for i, e in prior_gains(profile.candidates).items()}, "use_profile": False}
    if kind == "per-method":
        return {"methods": {m: 1.0 + 0.25 * k for k, m in enumerate(methods)}, "use_profile": False}
    if kind == "per-method-layers":
        n = len(profile.layers)
        layers = {str(i): 0.5 + i / max(n - 1, 1) for i in range(n)}
        return {"methods": {m: {"default": 1.0, "layers": layers} for m in methods}, "use_profile": False}
    rng = random.Random(0)
    return {"candidates": {c.id: round(rng.uniform(0.1, 1.0), 6) for c in profile.candidates}, "use_profile": False}


def run(models: list[str], budgets: tuple[str, ...], time_limit_s: float) -> list[dict]:
    """Return one result row per instance, printing each as it finishes."""
    rows = []
    warm = llama_like_problem(50)  # both solvers' first-call setup, so that the first row times a solve alone
    solve(warm)
    highs_gain(warm, time_limit_s)
    print(f"{'model':12} {'gains':18} {'obj':4} {'budget':>6} {'cands':>5} {'status':8} "
          f"{'ours s':>7} {'HiGHS s':>7} {'ratio':>6} same")
    for name in models:
        profile = load_profile(name)
        for kind in GAINS:
            gains = gain_spec(profile, kind)
            for budget in budgets:
                problem = problem_from_profile(profile, {"params": budget, "flops": "100%"}, "gain", gains)
                plan = solve(problem, max_time_s=time_limit_s)
                ref_s, ref_status, ref_gain = highs_gain(problem, time_limit_s)
                same = ref_status == "optimal" and abs(ref_gain - plan.gain) <= 1e-6 * max(1.0, ref_gain)
                rows.append(_row(name, kind, "gain", budget, problem, plan, ref_s, ref_status, same))
                if budget in EFFICIENCY_BUDGETS and plan.gain > 0:
                    eff = problem_from_profile(profile, {"params": budget, "flops": "100%"}, "efficiency", gains,
                                               min_gain=MIN_GAIN_SHARE * plan.gain)
                    rows.append(_row(name, kind, "efficiency", budget, eff, solve(eff, max_time_s=time_limit_s)))
    return rows


def _row(model, kind, objective, budget, problem, plan, ref_s=None, ref_status=None, same=None) -> dict:
    row = {"model": model, "gains": kind, "objective": objective, "budget": budget,
           "candidates": len(problem.candidates), "status": plan.status, "solve_s": round(plan.solve_ms / 1e3, 4),
           "gain": plan.gain, "bound": plan.bound, "efficiency": plan.efficiency,
           "highs_s": None if ref_s is None else round(ref_s, 4), "highs_status": ref_status, "same_optimum": same,
           "ratio": None if ref_s is None else round(plan.solve_ms / 1e3 / ref_s, 3)}
    ref = "" if ref_s is None else f"{ref_s:7.3f} {row['ratio']:6.2f} {'yes' if same else 'NO'}"
    print(f"{model:12} {kind:18} {objective[:4]:4} {budget:>6} {row['candidates']:5d} {plan.status:8} "
          f"{row['solve_s']:7.3f} {ref}", flush=True)
    return row


def summary(rows: list[dict]) -> dict:
    """Return the acceptance figures: worst gain time, ratio to HiGHS, worst efficiency time."""
    gain = [r for r in rows if r["objective"] == "gain"]
    eff = [r for r in rows if r["objective"] == "efficiency"]
    return {
        "gain_all_optimal": all(r["status"] == "optimal" for r in gain),
        "gain_max_s": max(r["solve_s"] for r in gain),
        "gain_max_ratio_to_highs": max(r["ratio"] for r in gain),
        "highs_max_s": max(r["highs_s"] for r in gain),
        "all_same_optimum": all(r["same_optimum"] for r in gain),
        "efficiency_all_optimal": all(r["status"] == "optimal" for r in eff),
        "efficiency_max_s": max((r["solve_s"] for r in eff), default=None),
    }


def markdown(result: dict) -> str:
    """Return the results as a Markdown table with the command and summary."""
    lines = [f"`{result['command']}` ({result['cpus']} CPUs)", "",
             "| model | gains | objective | budget | candidates | status | ours s | HiGHS s | ratio | same optimum |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        ref = ["", "", ""] if r["highs_s"] is None else [f"{r['highs_s']:.3f}", f"{r['ratio']:.2f}",
                                                         "yes" if r["same_optimum"] else "no"]
        lines.append(f"| {r['model']} | {r['gains']} | {r['objective']} | {r['budget']} | {r['candidates']} | "
                     f"{r['status']} | {r['solve_s']:.3f} | " + " | ".join(ref) + " |")
    lines += ["", "Summary: " + ", ".join(f"{k} = {v}" for k, v in result["summary"].items()), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--quick", action="store_true", help="two budgets (0.1 %%, 1 %%) only")
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    budgets = EFFICIENCY_BUDGETS if args.quick else BUDGETS
    rows = run(args.models.split(","), budgets, args.time_limit)
    result = {"command": "python -m benchmarks.solve_profiles " + " ".join(sys.argv[1:]),
              "cpus": os.cpu_count(), "python": platform.python_version(), "summary": summary(rows), "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    name = "solve_profiles-quick" if args.quick else "solve_profiles"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(result))
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
