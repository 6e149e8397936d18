"""The gain problem as one MIP for OR-Tools' HiGHS backend: an independent reference for tests and benchmarks.

x per candidate, y per layer (paid; monotone: a layer is paid when any below it is), w per saved input,
x <= y of its layer and x <= w of its input, at most one x per group, every budget row and min_gain.
HiGHS works in floats with tolerances, so its plans are a reference, not exact.
"""

from __future__ import annotations

import time

from ortools.linear_solver import pywraplp

from solver.instance import Instance
from solver.problem import Problem


def highs_gain(problem: Problem, time_limit_s: float) -> tuple[float, str, float]:
    """Return (seconds, status "optimal" / "feasible" / "none", total gain) of the max-gain plan by HiGHS."""
    inst = Instance.from_problem(problem)
    start = time.perf_counter()
    mip = pywraplp.Solver.CreateSolver("HIGHS")
    mip.SetTimeLimit(int(time_limit_s * 1000))
    mip.SetSolverSpecificParametersAsString("mip_rel_gap=0\nmip_abs_gap=0\noutput_flag=false\n")
    x = [mip.BoolVar(f"x{i}") for i in range(inst.n)]
    y = [mip.BoolVar(f"y{k}") for k in range(len(inst.layer_index))]
    w = [mip.BoolVar(f"w{k}") for k in range(len(inst.saved_memory))]
    for k in range(1, len(y)):
        mip.Add(y[k - 1] <= y[k])
    for i in range(inst.n):
        if inst.layer_pos[i] is not None:
            mip.Add(x[i] <= y[inst.layer_pos[i]])
        if inst.saved[i] is not None:
            mip.Add(x[i] <= w[inst.saved[i]])
    for members in inst.groups.values():
        mip.Add(sum(x[i] for i in members) <= 1)
    b = problem.budget

    def total(own: list[float], layers: list[float] | None = None, inputs: list[float] | None = None):
        return (sum(c * v for c, v in zip(own, x, strict=True))
                + sum(c * v for c, v in zip(layers or [], y, strict=False))
                + sum(c * v for c, v in zip(inputs or [], w, strict=False)))

    mip.Add(total([float(p) for p in inst.params]) <= b.params)
    mip.Add(total(inst.flops, inst.layer_flops) <= b.flops)
    if b.latency_ms is not None:
        mip.Add(total(inst.latency) <= b.latency_ms)
    if b.memory_bytes is not None:
        mip.Add(total(inst.memory, inst.layer_memory, inst.saved_memory) <= b.memory_bytes)
    if problem.min_gain > 0:
        mip.Add(total(inst.gain) >= problem.min_gain)
    mip.Maximize(total(inst.gain))
    status = mip.Solve()
    seconds = time.perf_counter() - start
    name = {pywraplp.Solver.OPTIMAL: "optimal", pywraplp.Solver.FEASIBLE: "feasible"}.get(status, "none")
    return seconds, name, mip.Objective().Value() if name != "none" else 0.0
