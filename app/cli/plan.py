"""`peft-planner plan`: solve a problem file (or a profile with gains) and print the plan."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app.cli import CliError, describe, read_json
from profiler.schema import Profile
from solver import Plan, Problem, SolveTimeout, solve

if TYPE_CHECKING:
    from app.planning.exportable import Exportable


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
    p.add_argument("--budget-memory", metavar="SIZE",
                   help="with --profile: total training memory, frozen weights included (24GiB, 80GB; default none)")
    p.add_argument("--budget-latency", type=float, metavar="MS",
                   help="with --profile: inference latency the adapters may add per batch, ms (default none)")
    p.add_argument("--objective", choices=["gain", "efficiency"], help="override the objective")
    p.add_argument("--min-gain", type=float, help="override min_gain")
    p.add_argument("--max-time", type=float, default=60.0, metavar="S", help="solver time limit in seconds (default 60)")
    p.add_argument("--exportable", choices=["peft"],
                   help="keep to candidates peft can export together (LoRA + norms, (IA)^3 + norms, LayerNorm "
                   "tuning, or prompt tuning alone: the best of them) and say what was left out (default: every "
                   "candidate); the JSON is then {\"plan\", \"exportable\"}")
    p.add_argument("--table", action="store_true", help="print a readable table instead of JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the elapsed-time line of solves over a second")
    p.set_defaults(func=run)


def _problem(args: argparse.Namespace) -> tuple[Problem, Profile | None]:
    """Return the problem to solve and, with --profile, the profile it was built from."""
    if args.problem is not None:
        if args.gains or args.budget_params or args.budget_memory or args.budget_latency is not None:
            raise CliError("--gains and --budget-* go with --profile, not --problem")
        data = read_json(args.problem)
        if isinstance(data, dict):
            if args.objective:
                data["objective"] = args.objective
            if args.min_gain is not None:
                data["min_gain"] = args.min_gain
        return Problem.model_validate(data), None
    from app.planning import problem_from_profile

    if not args.budget_params:
        raise CliError("--profile needs --budget-params (a number of parameters, or a share like 0.5%)")
    profile = Profile.model_validate(read_json(args.profile))
    gains = read_json(args.gains) if args.gains else None
    problem = problem_from_profile(
        profile,
        budget={"params": args.budget_params, "flops": args.budget_flops, "memory": args.budget_memory,
                "latency_ms": args.budget_latency},
        objective=args.objective or "gain",
        gains=gains,
        min_gain=args.min_gain or 0.0,
    )
    return problem, profile


def table(plan: Plan, problem: Problem, exportable: Exportable | None = None) -> str:
    """Return the plan as an aligned text table with its totals (and, when exportable, what was left out)."""
    by_id = {c.id: c for c in problem.candidates}
    rows = [("candidate", "method", "layer", "gain", "params", "flops")]
    for cid in plan.selected:
        c = by_id[cid]
        layer = "-" if c.layer is None else str(c.layer)
        rows.append((cid, c.method, layer, f"{c.gain:.4g}", f"{c.params:,}", f"{c.flops:.3g}"))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    eff = "-" if plan.efficiency is None else f"{plan.efficiency:.6g}"
    lines.append("")
    if exportable is not None:
        lines.append(exportable.summary())
    lines += [
        "(p, c: shares of the params and FLOPs budgets; M = gain / sqrt(p*c))",
        f"status {status_text(plan)}   objective {plan.objective}   selected {len(plan.selected)}",
        f"gain {plan.gain:.6g}   params {plan.params:,} (p={plan.p:.4f})   "
        f"flops {plan.flops:.4g} (c={plan.c:.4f})   M={eff}",
        f"latency {plan.latency_ms:.4g} ms   {memory_text(plan)}   solved in {plan.solve_ms:.0f} ms",
    ]
    return "\n".join(lines)


def memory_text(plan: Plan) -> str:
    """Return the plan's training memory in GiB: the total and its parts when known, else the adapters' own."""
    if plan.memory_breakdown is None or plan.memory_total_bytes is None:
        return f"memory (adapters only) {plan.memory_bytes / 2**30:.3g} GiB"
    parts = " + ".join(f"{name} {size / 2**30:.3g}" for name, size in plan.memory_breakdown.items())
    return f"memory {plan.memory_total_bytes / 2**30:.3g} GiB = {parts} GiB"


def status_text(plan: Plan) -> str:
    """Return the plan's status; an unproven plan says the time limit stopped it and its proven gap in %."""
    if plan.status != "feasible":
        return plan.status
    value = plan.gain if plan.objective == "gain" else (plan.efficiency or 0.0)
    if plan.bound is None or plan.bound <= 0:
        return "feasible (time limit reached)"
    gap = max(plan.bound - value, 0.0) / plan.bound * 100
    return f"feasible (time limit reached, proven gap {gap:.3g} %)"


@contextmanager
def elapsed_line(enabled: bool, after_s: float = 1.0) -> Iterator[None]:
    """Show 'solving... N s' on stderr while the block runs longer than `after_s` (redrawn on a terminal)."""
    done = threading.Event()
    write: Callable[[str], object] = sys.stderr.write

    def tick() -> None:
        start = time.perf_counter()
        if done.wait(after_s):
            return
        tty = sys.stderr.isatty()
        while True:
            write(f"\rsolving... {time.perf_counter() - start:.0f} s" if tty else "solving (over a second)...\n")
            sys.stderr.flush()
            if not tty or done.wait(0.5):
                break
        done.wait()
        if tty:
            write("\r" + " " * 24 + "\r")

    thread = threading.Thread(target=tick, daemon=True)
    if enabled:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if enabled:
            thread.join()


def run(args: argparse.Namespace) -> int:
    """Solve and print; returns 0 when a plan was found, 1 when infeasible."""
    try:
        problem, profile = _problem(args)
    except ValidationError as exc:
        raise CliError(describe(exc)) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        with elapsed_line(not args.no_progress):
            plan, problem, exportable = _solve(problem, args)
    except SolveTimeout as exc:
        raise CliError(f"{exc} (--max-time {args.max_time:g})") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if profile is not None:
        from app.planning import with_memory

        plan = with_memory(plan, profile)
    if args.table:
        print(table(plan, problem, exportable))
    elif exportable is None:
        print(plan.model_dump_json(indent=2))
    else:
        print(json.dumps({"plan": plan.model_dump(mode="json"), "exportable": exportable.model_dump(mode="json")},
                         indent=2))
    return 1 if plan.status == "infeasible" else 0


def _solve(problem: Problem, args: argparse.Namespace) -> tuple[Plan, Problem, Exportable | None]:
    """The plan, the problem it solves (with --exportable, its peft family's part) and what was left out."""
    if args.exportable is None:
        return solve(problem, max_time_s=args.max_time), problem, None
    from app.planning import PlanningError
    from app.planning.exportable import solve_exportable

    try:
        solved = solve_exportable(problem, args.max_time)
    except PlanningError as exc:
        raise CliError(str(exc)) from None
    return solved.plan, solved.problem, solved.exportable
