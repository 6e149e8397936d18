"""/v1/plans: solve a budget against a stored profile or an inline problem; read plans, their problems and
peft configs; validate a plan by fine-tuning it (a job)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from app.bodies import StrictRoute
from app.dependencies import Context, Ctx, Db, Paging
from app.errors import ApiError, found, problem_responses
from app.idempotency import IdempotencyKey, Outcome, respond
from app.jobs.queue import checked_task, queue_task_job
from app.jobs.specs import ValidationJob, ValidationRequest
from app.planning import (
    BudgetSpec,
    GainSpec,
    PlanningError,
    gain_sources,
    problem_from_profile,
    with_memory,
)
from app.planning.exportable import Exportable, solve_exportable
from app.planning.notes import plan_notes
from app.planning.prepared import PreparedProblem
from app.planning.profiles import load_profile
from app.planning.report import FRONTIER_POINTS, FRONTIER_SECONDS, plan_report, report_frontier
from app.schemas import JobOut, Page
from app.store import plans
from app.store.tables import PlanRow
from profiler.errors import ProfileError
from profiler.methods.export import PeftExport, Unsupported, export_plan, task_type
from profiler.schema import GainCost
from solver import Plan, Problem, SolveTimeout, Strict, solve

router = APIRouter(prefix="/v1/plans", tags=["plans"], route_class=StrictRoute)


class PlanRequest(Strict):
    """A budget and objective against a stored profile, or an inline problem."""

    profile_id: str | None = Field(default=None, max_length=64)
    budget: BudgetSpec | None = Field(default=None, description="With profile_id.")
    objective: Literal["gain", "efficiency"] = "gain"
    min_gain: float = Field(default=0.0, ge=0)
    gains: GainSpec | None = Field(default=None, description="With profile_id.")
    problem: Problem | None = Field(default=None, description="Instead of profile_id.")
    exportable: Literal["peft"] | None = Field(
        default=None, description='"peft": only candidates peft can export together (one peft config type); '
        "the plan's source says what was left out and why.")

    @model_validator(mode="after")
    def _one_source(self) -> PlanRequest:
        if (self.profile_id is None) == (self.problem is None):
            raise ValueError("give exactly one of profile_id and problem")
        if self.problem is not None and (self.budget or self.gains):
            raise ValueError("budget and gains go inside an inline problem")
        if self.profile_id is not None and self.budget is None:
            raise ValueError("budget is required with profile_id")
        return self


class PlanSource(BaseModel):
    """What a plan was solved from."""

    profile_id: str | None
    budget: dict[str, Any] = Field(description="The budget as requested (may be relative).")
    objective: str
    min_gain: float
    gains: dict[str, int] = Field(description="How many candidates took their gain from where.")
    gain_cost: GainCost | None = Field(
        default=None, description="What estimating the profile's gains cost, cost_share against one planned "
        "fine-tuning run (docs/gains.md#cost); null for an inline problem or a profile that does not record it.")
    problem_sha256: str
    reused: bool = Field(
        default=False, description="An equal problem was solved before: its optimal plan is reused."
    )
    notes: list[str] = Field(default_factory=list, description="What the numbers do not say (why it is empty...).")
    exportable: Exportable | None = Field(
        default=None, description='With "exportable": the peft family kept to and what was left out.')


class PlanOut(BaseModel):
    """A stored plan."""

    id: str
    created_at: datetime
    source: PlanSource
    plan: Plan
    report_url: str = Field(description="The plan's HTML report: heatmap, budgets, frontier, gains, export.")


def plan_out(row: PlanRow) -> PlanOut:
    """A stored plan as its API representation."""
    return PlanOut(id=row.id, created_at=row.created_at, source=row.source, plan=row.plan,
                   report_url=f"/v1/plans/{row.id}/report")


def _prepare(ctx: Context, session: Session, body: PlanRequest) -> PreparedProblem:
    """The request's problem, built and hashed once per distinct profile request.

    Profiles never change once stored, so equal requests against one
    profile make equal problems: a repeated request skips building,
    serializing and hashing its candidates.
    """
    if body.problem is not None:
        problem = body.problem
        source = {"budget": problem.budget.model_dump(exclude_none=True),
                  "gains": {"problem": len(problem.candidates)}}
        return _checked(ctx, problem, source, None)
    key = (body.profile_id, body.model_dump_json(exclude={"profile_id", "problem", "exportable"}))
    cached = ctx.problems.get(key)
    if cached is not None:
        return cached
    profile = load_profile(ctx, session, body.profile_id)
    try:
        problem = problem_from_profile(
            profile, body.budget, body.objective, body.gains, body.min_gain
        )
    except PlanningError as exc:
        raise ApiError(422, str(exc)) from exc
    counts = gain_sources(profile, body.gains)
    source = {"budget": body.budget.model_dump(exclude_none=True),
              "gains": {k: n for k, n in counts.items() if n},
              "gain_cost": None if profile.gain_cost is None else profile.gain_cost.model_dump(mode="json")}
    prepared = _checked(ctx, problem, source, body.profile_id)
    ctx.problems.put(key, prepared.cacheable())
    return prepared


def _checked(
    ctx: Context, problem: Problem, source: dict[str, Any], profile_id: str | None
) -> PreparedProblem:
    """Enforce the candidate limit, complete the plan's source, serialize and hash."""
    if len(problem.candidates) > ctx.settings.max_candidates:
        raise ApiError(
            422, f"{len(problem.candidates)} candidates; the limit is {ctx.settings.max_candidates}"
        )
    source = {**source, "profile_id": profile_id, "objective": problem.objective,
              "min_gain": problem.min_gain}
    return PreparedProblem.of(problem, source)


@dataclass(frozen=True)
class _Solved:
    """A solved request as cached: its plan, notes and, when exportable, what the restriction left out and the
    part of the problem it solved (serialized and hashed once, without a source)."""

    plan: Plan
    notes: list[str]
    exportable: Exportable | None
    part: PreparedProblem | None

    def stored(self, prepared: PreparedProblem) -> PreparedProblem:
        """The problem the plan solved, with the request's source: `prepared`, or the peft family's part."""
        if self.part is None:
            return prepared
        return replace(self.part, source={**prepared.source, "problem_sha256": self.part.digest})


def _solve(ctx: Context, prepared: PreparedProblem, exportable: str | None) -> _Solved:
    """Solve (within one peft family when `exportable`) within the service's time limit."""
    problem, report, part, limit = prepared.problem(), None, None, ctx.settings.solve_max_time_s
    try:
        if exportable is None:
            plan = solve(problem, max_time_s=limit)
        else:
            result = solve_exportable(problem, limit)
            plan, problem, report = result.plan, result.problem, result.exportable
            part = PreparedProblem.of(problem, {}).cacheable()
    except SolveTimeout as exc:
        raise ApiError(
            422, f"no feasible plan found within the solve time limit (solve_max_time_s = {limit} s): {exc}",
        ) from exc
    except ValueError as exc:  # PlanningError, or saved inputs joining too many groups
        raise ApiError(422, str(exc)) from exc
    ctx.metrics.solve.labels(plan.objective, plan.status).observe(plan.solve_ms / 1e3)
    return _Solved(plan, plan_notes(problem, plan, dict(prepared.source["gains"])), report, part)


@router.post(
    "", status_code=201, response_model=PlanOut,
    responses=problem_responses(404, 409, 422, 503),
    summary="Solve a budget: returns the stored plan",
)
async def create_plan(
    body: PlanRequest, request: Request, ctx: Ctx, idempotency_key: IdempotencyKey = None,
) -> Response:
    """Solve and store a plan; 201 with the plan and its Location.

    At most `settings.max_concurrent_solves` requests compute at once, each in a worker thread; the others wait
    here, not in threads contending for the interpreter lock (with 16 in flight on 2 cores that contention
    cost a quarter of the CPU), and one that waits `settings.solve_wait_s` for a slot is a 503 with Retry-After.
    """
    with anyio.move_on_after(ctx.settings.solve_wait_s) as waiting:
        await ctx.computing.acquire()
    if waiting.cancelled_caught:
        raise ApiError(503, f"all {ctx.settings.max_concurrent_solves} plan-request slots (max_concurrent_solves) "
                       f"stayed busy for solve_wait_s = {ctx.settings.solve_wait_s} s; retry shortly",
                       headers={"Retry-After": "1"})
    try:
        return await anyio.to_thread.run_sync(_create_plan_in_session, body, request, ctx, idempotency_key)
    finally:
        ctx.computing.release()


def _create_plan_in_session(
    body: PlanRequest, request: Request, ctx: Context, idempotency_key: str | None,
) -> Response:
    """`_create_plan` in a session of its own, opened in the worker thread (the `Db` dependency would cost two
    more thread hops per request on this hot path)."""
    with ctx.sessions() as session:
        return _create_plan(body, request, ctx, session, idempotency_key)


def _create_plan(
    body: PlanRequest, request: Request, ctx: Context, session: Session,
    idempotency_key: str | None,
) -> Response:
    def produce() -> Outcome:
        prepared = _prepare(ctx, session, body)
        key = (prepared.digest, body.exportable)
        solved = ctx.solved.get(key)
        reused = solved is not None
        if solved is None:
            solved = _solve(ctx, prepared, body.exportable)
            if solved.plan.status == "optimal":
                ctx.solved.put(key, solved)
        stored = solved.stored(prepared)
        source = {**stored.source, "reused": reused, "notes": solved.notes}
        if solved.exportable is not None:
            source["exportable"] = solved.exportable.model_dump(mode="json")
        plan = solved.plan
        if body.profile_id is not None:
            plan = with_memory(plan, load_profile(ctx, session, body.profile_id))
        row = plans.add(
            session, plan.model_dump(mode="json"), source, stored.digest, stored.json,
            body.profile_id,
        )
        return Outcome(201, plan_out(row), location=f"/v1/plans/{row.id}")

    return respond(session, request, idempotency_key, body, produce)


@router.get("", response_model=Page[PlanOut], responses=problem_responses(422))
def list_plans(
    session: Db, paging: Paging, profile_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[PlanOut]:
    """Stored plans, newest first."""
    rows, total = plans.page(session, paging.limit, paging.offset, profile_id)
    return Page(items=[plan_out(r) for r in rows], total=total, limit=paging.limit, offset=paging.offset)


def _plan_row(session: Session, plan_id: str) -> PlanRow:
    return found(session.get(PlanRow, plan_id), "plan", plan_id)


@router.get("/{plan_id}", response_model=PlanOut, responses=problem_responses(404))
def get_plan(plan_id: str, session: Db) -> PlanOut:
    """One stored plan; `report_url` is its HTML report (GET /v1/plans/{id}/report)."""
    return plan_out(_plan_row(session, plan_id))


@router.get("/{plan_id}/problem", response_model=Problem, responses=problem_responses(404))
def get_plan_problem(plan_id: str, session: Db) -> Response:
    """The exact problem the plan solved (solve it again to reproduce the plan)."""
    body = plans.problem_body(session, _plan_row(session, plan_id).problem_hash)
    return Response(body, media_type="application/json")


@router.get(
    "/{plan_id}/report", response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}} | problem_responses(404),
    summary="The plan as a self-contained HTML report (heatmap, budgets, frontier, gains, export)",
)
def get_plan_report(plan_id: str, ctx: Ctx, session: Db) -> HTMLResponse:
    """One offline HTML page (inline SVG, no scripts, no external assets): a heatmap of layers x module kinds
    with the method and setting chosen for each, every budget against its limit, the gain-vs-params frontier
    with this plan marked, where the gains come from, the solver's proof, and whether the plan exports to peft.
    The report's frontier is capped in points and seconds (a large problem may get none)."""
    row = _plan_row(session, plan_id)
    problem = Problem.model_validate_json(plans.problem_body(session, row.problem_hash))
    front = ctx.frontiers.get_or_load(
        ("report", row.problem_hash),
        lambda: report_frontier(problem, FRONTIER_POINTS, min(FRONTIER_SECONDS, ctx.settings.solve_max_time_s)),
    )
    profile = load_profile(ctx, session, row.profile_id) if row.profile_id else None
    html = plan_report(Plan.model_validate(row.plan), problem, front, plan_id=row.id, source=row.source,
                       profile=profile)
    return HTMLResponse(html)


class PeftConfigOut(BaseModel):
    """peft configs for a plan (each `peft_type` plus its constructor arguments) and what is left out."""

    plan_id: str
    configs: list[dict] = Field(description="Build with peft's config class of `peft_type`, then `get_peft_model`.")
    exported: list[str]
    unsupported: list[Unsupported]
    complete: bool = Field(description="Every selected candidate is in the configs.")


@router.get("/{plan_id}/peft-config", response_model=PeftConfigOut, responses=problem_responses(404, 422))
def plan_peft_config(
    plan_id: str, ctx: Ctx, session: Db,
    token_dim: Annotated[int | None, Query(ge=1, le=1_000_000, description="Embedding width, for prompt tuning.")] = None,
) -> PeftConfigOut:
    """The peft export of a stored plan's selected candidates (with `task_type` CAUSAL_LM when its profile is a
    causal LM's)."""
    row = _plan_row(session, plan_id)
    kind = None if row.profile_id is None else task_type(load_profile(ctx, session, row.profile_id).task_kind)
    try:
        export: PeftExport = export_plan(list(row.plan.get("selected", [])), token_dim, kind)
    except ProfileError as exc:
        raise ApiError(422, str(exc)) from exc
    return PeftConfigOut(plan_id=plan_id, configs=export.configs, exported=export.exported,
                         unsupported=export.unsupported, complete=export.complete)


@router.post(
    "/{plan_id}/validation", status_code=202, response_model=JobOut,
    responses=problem_responses(403, 404, 409, 422, 429),
    summary="Fine-tune a plan for N steps over S seeds: realized vs predicted gain (a job)",
)
def create_validation_job(
    plan_id: str, body: ValidationRequest, request: Request, ctx: Ctx, session: Db,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """202 with a queued `validation` job; its `result` is the PlanValidation. 409 when the plan was
    solved from an inline problem (its ids name no profiled model's modules) or selects nothing."""

    def produce() -> Outcome:
        plan = _plan_row(session, plan_id)
        if plan.profile_id is None:
            raise ApiError(409, f"plan {plan_id} was solved from an inline problem, not a profile: its candidate "
                           "ids name no profiled model's modules, so it cannot be trained; validate a plan "
                           "made with profile_id")
        if not plan.plan["selected"]:
            raise ApiError(409, f"plan {plan_id} selects no candidates (status {plan.plan['status']}); "
                           "nothing to validate")
        kind = load_profile(ctx, session, plan.profile_id).task_kind
        task = checked_task(body.task, ctx, session, kind)
        spec = ValidationJob(plan_id=plan_id, **body.model_copy(update={"task": task}).model_dump())
        return queue_task_job(ctx, session, "validation", spec)

    return respond(session, request, idempotency_key, body, produce)
