"""`peft-planner report`: write a plan's self-contained HTML report (what GET /v1/plans/{id}/report serves)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.cli import CliError, describe, read_json
from solver import Plan, Problem

FRONTIER_HELP = "time cap of the report's frontier in seconds (default %(default)g; a large problem needs more)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` parser."""
    p = subparsers.add_parser(
        "report",
        help="write a plan's HTML report",
        description="Write a plan as one offline HTML page: a heatmap of layers x module kinds, the budgets "
                    "against their limits, the gain-vs-params frontier, the gain sources, the proof, the export. "
                    "The plan alone gives its ids and totals; --problem (or --profile) gives the candidates' "
                    "gains, the limits and the frontier.",
    )
    p.add_argument("plan", metavar="PLAN", help="plan JSON (from `peft-planner plan` or GET /v1/plans/{id}), or -")
    p.add_argument("-o", "--out", metavar="FILE", required=True, help="the HTML file to write")
    p.add_argument("--problem", metavar="FILE",
                   help="the problem the plan solved (the `--problem` file of `peft-planner plan`, or GET "
                        "/v1/plans/{id}/problem)")
    p.add_argument("--profile", metavar="FILE",
                   help="the profile the plan was made from: the model's description, and without --problem the "
                        "problem rebuilt from it with the budget of an API plan's `source`")
    p.add_argument("--frontier-time", type=float, default=3.0, metavar="S", help=FRONTIER_HELP)
    p.set_defaults(func=run)


def _plan(path: str) -> tuple[Plan, str | None, dict[str, Any] | None]:
    """The plan in `path`, with its id and source when it is an API plan ({"id", "source", "plan"})."""
    data = read_json(path)
    api = isinstance(data, dict) and isinstance(data.get("plan"), dict)
    try:
        plan = Plan.model_validate(data["plan"] if api else data)
    except ValidationError as exc:
        raise CliError(f"{path}: {describe(exc, 'plan')}") from None
    return plan, (data.get("id") if api else None), (data.get("source") if api else None)


def _digest(problem: Problem) -> str:
    from app.planning.prepared import PreparedProblem

    return PreparedProblem.of(problem, {}).digest


def _rebuilt(profile: Any, plan: Plan, source: dict[str, Any] | None) -> tuple[Problem | None, str]:
    """The plan's problem rebuilt from its profile and source budget (an exportable plan's: its peft family's
    part), or None and why not."""
    from app.planning import PlanningError, problem_from_profile
    from app.planning.exportable import family_part

    if not source or "budget" not in source:
        return None, "a bare plan JSON records no budget: give --problem"
    try:
        problem = problem_from_profile(profile, source["budget"], plan.objective, None, source.get("min_gain", 0.0))
    except PlanningError as exc:
        return None, f"the profile does not rebuild the plan's problem ({exc}): give --problem"
    if source.get("exportable"):
        problem = family_part(problem, source["exportable"]["family"])
    if source.get("problem_sha256") not in (None, _digest(problem)):
        return None, ("the profile does not rebuild the problem this plan solved (its sha256 differs: gains given "
                      "with the plan request?): give --problem")
    return problem, ""


def run(args: argparse.Namespace) -> int:
    """Write the report; prints where and how big. Exit 0."""
    from app.planning.report import FRONTIER_POINTS, NO_PROBLEM, plan_report, report_frontier
    from profiler.schema import Profile

    plan, plan_id, source = _plan(args.plan)
    try:
        problem = Problem.model_validate(read_json(args.problem)) if args.problem else None
    except ValidationError as exc:
        raise CliError(describe(exc)) from None
    try:
        profile = Profile.model_validate(read_json(args.profile)) if args.profile else None
    except ValidationError as exc:
        raise CliError(describe(exc, "profile")) from None
    expected = (source or {}).get("problem_sha256")
    if problem is not None and expected not in (None, _digest(problem)):
        raise CliError(f"{args.problem} is not the problem this plan solved (sha256 differs from the plan's source)")
    note = NO_PROBLEM
    if problem is None and profile is not None:
        problem, note = _rebuilt(profile, plan, source)
    front = report_frontier(problem, FRONTIER_POINTS, args.frontier_time)
    html = plan_report(plan, problem, front, plan_id=plan_id, source=source, profile=profile, problem_note=note)
    try:
        Path(args.out).write_text(html, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"wrote {args.out} ({len(html.encode()) / 1024:.0f} KB, {len(plan.selected)} selected candidates)")
    return 0
