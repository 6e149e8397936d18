"""Solver benchmark: exact CP-SAT plans vs a greedy baseline and OR-Tools' knapsack_solver.

    python -m benchmarks.solve_random [--sizes 50,200,1200,3000] [--seeds 3]

For each size of LLaMA-7B-shaped problem (solver.examples) and each objective
(gain; efficiency with min_gain = 30 % of the per-layer best gains) it prints
solve time, status and the greedy baseline's gap. OR-Tools' `knapsack_solver`
(CBC backend) cannot express groups or shared layer costs, so it is compared
on the plain two-budget version of the same candidates, against our solver on
that same plain problem. Results go to benchmarks/results/solve_random.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from ortools.algorithms.python import knapsack_solver

from solver import Problem, solve
from solver.examples import llama_like_problem
from solver.instance import Instance

ROOT = Path(__file__).resolve().parents[1]

MIN_GAIN_FRACTION = 0.3


def greedy(problem: Problem) -> list[int]:
    """Return a greedy plan: repeatedly add the feasible candidate of best score.

    Score is gain per unit of (p + c) added, counting layer costs, for the gain
    objective; for efficiency, the plan's M after adding (while it improves M
    or min_gain is still unmet).
    """
    inst = Instance.from_problem(problem)
    chosen: list[int] = []
    groups: set[str] = set()
    efficiency = problem.objective == "efficiency"
    while True:
        base = inst.totals(chosen)
        base_p, base_c = inst.fractions(base)
        best, best_score = None, -math.inf
        for i in range(inst.n):
            group = problem.candidates[i].group
            if i in chosen or (group is not None and group in groups):
                continue
            t = inst.totals([*chosen, i])
            if not inst.fits(t, min_gain=False):
                continue
            if efficiency:
                score = inst.efficiency(t) or 0.0
            else:
                p, c = inst.fractions(t)
                score = problem.candidates[i].gain / max(p + c - base_p - base_c, 1e-15)
            if score > best_score:
                best, best_score = i, score
        if best is None:
            break
        if efficiency and chosen:
            current = inst.efficiency(base) or 0.0
            if base.gain >= problem.min_gain and best_score <= current:
                break
        chosen.append(best)
        if problem.candidates[best].group is not None:
            groups.add(problem.candidates[best].group)
    final = inst.totals(chosen)
    return chosen if inst.fits(final) else []


def plain(problem: Problem) -> Problem:
    """Return the problem without groups and layer costs (what knapsack_solver can express)."""
    data = problem.model_dump()
    for c in data["candidates"]:
        c["group"] = None
        c["layer"] = None
    data["layers"] = []
    data["objective"] = "gain"
    data["min_gain"] = 0.0
    return Problem.model_validate(data)


def ortools_knapsack(problem: Problem, time_limit_s: float) -> tuple[float, float, bool]:
    """Return (gain, seconds, reported optimal) of knapsack_solver's CBC backend on a plain problem."""
    scale = 1e6
    solver = knapsack_solver.KnapsackSolver(
        knapsack_solver.SolverType.KNAPSACK_MULTIDIMENSION_CBC_MIP_SOLVER, "bench"
    )
    profits = [round(c.gain * scale) for c in problem.candidates]
    flops_unit = problem.budget.flops / 2**40
    weights = [
        [c.params for c in problem.candidates],
        [math.ceil(c.flops / flops_unit) for c in problem.candidates],
    ]
    caps = [int(problem.budget.params), math.floor(problem.budget.flops / flops_unit)]
    solver.init(profits, weights, caps)
    solver.set_time_limit(time_limit_s)
    start = time.perf_counter()
    solver.solve()
    seconds = time.perf_counter() - start
    gain = math.fsum(c.gain for i, c in enumerate(problem.candidates) if solver.best_solution_contains(i))
    return gain, seconds, solver.is_solution_optimal()


def gap(opt: float, other: float) -> float:
    """Return how far `other` is below `opt`, in percent of `opt`."""
    return 100.0 * (opt - other) / opt if opt else 0.0


def run(size: int, seed: int, objective: str) -> dict:
    """Benchmark one problem; returns a result row."""
    problem = llama_like_problem(
        size, seed=seed, objective=objective,
        min_gain_fraction=MIN_GAIN_FRACTION if objective == "efficiency" else 0.0,
    )
    plan = solve(problem, max_time_s=120)
    inst = Instance.from_problem(problem)
    start = time.perf_counter()
    g = greedy(problem)
    greedy_s = time.perf_counter() - start
    totals = inst.totals(g)
    score = (inst.efficiency(totals) or 0.0) if objective == "efficiency" else totals.gain
    value = plan.efficiency if objective == "efficiency" else plan.gain
    row = {
        "size": size, "candidates": len(problem.candidates), "seed": seed, "objective": objective,
        "status": plan.status, "solve_s": round(plan.solve_ms / 1e3, 3), "value": value,
        "bound": plan.bound, "greedy_value": score, "greedy_s": round(greedy_s, 3),
        "greedy_gap_pct": round(gap(value, score), 3),
        "greedy_meets_min_gain": totals.gain >= problem.min_gain,
    }
    if objective == "gain":
        flat = plain(problem)
        ours = solve(flat, max_time_s=60)
        ko_gain, ko_s, ko_opt = ortools_knapsack(flat, time_limit_s=30)
        row.update(
            plain_solve_s=round(ours.solve_ms / 1e3, 3), plain_gain=ours.gain,
            knapsack_solver_s=round(ko_s, 3), knapsack_solver_gain=ko_gain,
            knapsack_solver_reported_optimal=ko_opt,
            knapsack_solver_gap_pct=round(gap(ours.gain, ko_gain), 5),
        )
    return row


def main() -> int:
    """Run the benchmark, print a table, write benchmarks/results/solve_random.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200,1200,3000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/solve_random.json"))
    args = parser.parse_args()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for objective in ("gain", "efficiency"):
            for seed in range(args.seeds):
                row = run(size, seed, objective)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    header = (
        f"{'size':>5} {'cands':>5} {'objective':<10} {'status':<8} {'median s':>8} {'max s':>7} "
        f"{'greedy gap %':>12} {'knapsack_solver s':>17} {'its gap %':>9}"
    )
    print(header)
    summary = []
    for size in sorted({r["size"] for r in rows}):
        for objective in ("gain", "efficiency"):
            group = [r for r in rows if r["size"] == size and r["objective"] == objective]
            statuses = sorted({r["status"] for r in group})
            item = {
                "size": size, "candidates": group[0]["candidates"], "objective": objective,
                "statuses": statuses,
                "median_solve_s": statistics.median(r["solve_s"] for r in group),
                "max_solve_s": max(r["solve_s"] for r in group),
                "mean_greedy_gap_pct": statistics.mean(r["greedy_gap_pct"] for r in group),
            }
            ks = f"{'-':>17} {'-':>9}"
            if objective == "gain":
                item["median_knapsack_solver_s"] = statistics.median(r["knapsack_solver_s"] for r in group)
                item["mean_knapsack_solver_gap_pct"] = statistics.mean(r["knapsack_solver_gap_pct"] for r in group)
                ks = f"{item['median_knapsack_solver_s']:>17.3f} {item['mean_knapsack_solver_gap_pct']:>9.5f}"
            summary.append(item)
            print(
                f"{size:>5} {item['candidates']:>5} {objective:<10} {'/'.join(statuses):<8} "
                f"{item['median_solve_s']:>8.2f} {item['max_solve_s']:>7.2f} "
                f"{item['mean_greedy_gap_pct']:>12.2f} {ks}"
            )
    out = {
        "command": "python -m benchmarks.solve_random " + " ".join(sys.argv[1:]),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "summary": summary, "runs": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
