"""`peft-planner plan`: solve a problem file (or a profile with gains) and print the plan."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from app.cli import CliError, describe, read_json
from solver import Plan, Problem, SolveTimeout, solve


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `plan` parser."""
    p = subparsers.add_parser(
        "plan",
        help="choose adapters within a budget",
        description="Solve a planning problem exactly and print the plan as JSON.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--problem", metavar="FILE", help="problem JSON file, or - for stdin")
    source.add_argument("--profile", metavar="FILE", help="profile JSON written by `peft-planner profile`")
    p.add_argument("--gains", metavar="FILE", help="with --profile: gains JSON (by id, by method)")
    p.add_argument("--budget-params", metavar="N|P%", help="with --profile: params budget")
    p.add_argument("--budget-flops", metavar="N|P%", default="100%",
                   help="with --profile: training FLOPs per step, a number or %% of a full fine-tuning step "
                   "(default 100%%, as the API)")
    p.add_argument("--objective", choices=["gain", "efficiency"], help="override the objective")
    p.add_argument("--min-gain", type=float, help="override min_gain")
    p.add_argument("--max-time", type=float, default=60.0, metavar="S", help="solver time limit in seconds (default 60)")
    p.add_argument("--table", action="store_true", help="print a readable table instead of JSON")
    p.set_defaults(func=run)


def _problem(args: argparse.Namespace) -> Problem:
    if args.problem is not None:
        if args.gains or args.budget_params:
            raise CliError("--gains and --budget-* go with --profile, not --problem")
        data = read_json(args.problem)
        if isinstance(data, dict):
            if args.objective:
                data["objective"] = args.objective
            if args.min_gain is not None:
                data["min_gain"] = args.min_gain
        return Problem.model_validate(data)
    from app.planning import problem_from_profile
    from profiler.schema import Profile

    if not args.budget_params:
        raise CliError("--profile needs --budget-params (a number of parameters, or a share like 0.5%)")
    profile = Profile.model_validate(read_json(args.profile))
    gains = read_json(args.gains) if args.gains else None
    return problem_from_profile(
        profile,
        budget={"params": args.budget_params, "flops": args.budget_flops},
        objective=args.objective or "gain",
        gains=gains,
        min_gain=args.min_gain or 0.0,
    )


def table(plan: Plan, problem: Problem) -> str:
    """Return the plan as an aligned text table with its totals."""
    by_id = {c.id: c for c in problem.candidates}
    rows = [("candidate", "method", "layer", "gain", "params", "flops")]
    for cid in plan.selected:
        c = by_id[cid]
        layer = "-" if c.layer is None else str(c.layer)
        rows.append((cid, c.method, layer, f"{c.gain:.4g}", f"{c.params:,}", f"{c.flops:.3g}"))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    eff = "-" if plan.efficiency is None else f"{plan.efficiency:.6g}"
    lines += [
        "",
        f"status {plan.status}   objective {plan.objective}   selected {len(plan.selected)}",
        f"gain {plan.gain:.6g}   params {plan.params:,} (p={plan.p:.4f})   "
        f"flops {plan.flops:.4g} (c={plan.c:.4f})   M={eff}",
        f"latency {plan.latency_ms:.4g} ms   memory {plan.memory_bytes:.4g} B   solved in {plan.solve_ms:.0f} ms",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Solve and print; returns 0 when a plan was found, 1 when infeasible."""
    try:
        problem = _problem(args)
    except ValidationError as exc:
        raise CliError(describe(exc)) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        plan = solve(problem, max_time_s=args.max_time)
    except SolveTimeout as exc:
        raise CliError(f"{exc} (--max-time {args.max_time:g})") from None
    print(table(plan, problem) if args.table else plan.model_dump_json(indent=2))
    return 1 if plan.status == "infeasible" else 0
