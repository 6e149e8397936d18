"""/v1/profiles: start profiling jobs, read profiles and their Pareto frontiers, estimate their gains (a job)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from app.bodies import StrictRoute, where
from app.dependencies import Context, Ctx, Db, Paging
from app.errors import ApiError, problem_responses
from app.idempotency import IdempotencyKey, Outcome, respond
from app.jobs.queue import accepted, checked_task, queue_job, queue_task_job
from app.jobs.specs import GainsJob, GainsRequest
from app.modelspec import cache_key, checked_options, checked_spec
from app.planning import BudgetSpec, GainSpec, PlanningError, problem_from_profile
from app.planning.chart import frontier_svg
from app.planning.profiles import load_profile, profile_row
from app.schemas import JobOut, Page
from app.store import jobs as job_store
from app.store import profiles as profile_store
from profiler.jsontext import JsonTextError, loads
from profiler.schema import ModelSpec, Profile, ProfileOptions
from solver import Frontier, Strict, frontier

router = APIRouter(prefix="/v1/profiles", tags=["profiles"], route_class=StrictRoute)
SVG = "image/svg+xml"


class ProfileRequest(Strict):
    """A model to profile and how."""

    model: ModelSpec
    options: ProfileOptions = Field(default_factory=ProfileOptions)


class ProfileSummary(BaseModel):
    """A stored profile, without its candidates."""

    id: str
    model_name: str
    total_params: int
    num_candidates: int
    created_at: datetime


@router.post(
    "", status_code=202, response_model=JobOut,
    responses={200: {"description": "Answered from the profile cache", "model": JobOut}}
    | problem_responses(403, 409, 422, 429),
    summary="Start a profiling job (or reuse a stored profile)",
)
def create_profile(
    body: ProfileRequest, request: Request, ctx: Ctx, session: Db,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """202 with a queued job; 200 with a finished job when the same profile is stored.

    A request equal to a queued or running job's joins that job.
    """

    def produce() -> Outcome:
        spec = checked_spec(body.model, ctx.settings, body.options)
        key = cache_key(spec, checked_options(body.options), ctx.settings)
        spec_json, options_json = spec.model_dump(mode="json"), body.options.model_dump(mode="json")
        stored = profile_store.by_cache_key(session, key)
        if stored is not None:
            job = job_store.add_cached(session, spec_json, options_json, stored)
            session.commit()
            return accepted(job, 200)
        return accepted(queue_job(ctx, session, "profile", spec_json, options_json, key))

    return respond(session, request, idempotency_key, body, produce)


@router.get("", response_model=Page[ProfileSummary], responses=problem_responses(422))
def list_profiles(session: Db, paging: Paging) -> Page[ProfileSummary]:
    """Stored profiles, newest first."""
    rows, total = profile_store.page(session, paging.limit, paging.offset)
    items = [ProfileSummary(id=r.id, model_name=r.model_name, total_params=r.total_params,
                            num_candidates=r.num_candidates, created_at=r.created_at) for r in rows]
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.get("/{profile_id}", response_model=Profile, responses=problem_responses(404))
def get_profile(profile_id: str, session: Db) -> Response:
    """The full profile: model, measurement settings, candidates and layer costs."""
    return Response(profile_row(session, profile_id).body, media_type="application/json")


def _frontier(
    ctx: Context, session: Session, profile_id: str, axis: str, points: int,
    gains: GainSpec | None,
) -> Frontier:
    profile = load_profile(ctx, session, profile_id)
    everything = BudgetSpec(
        params=sum(c.params for c in profile.candidates),
        flops=sum(c.flops for c in profile.candidates)
        + sum(layer.backward_flops for layer in profile.layers),
    )
    try:
        problem = problem_from_profile(profile, everything, gains=gains)
    except PlanningError as exc:
        hint = "" if gains else "; without `gains` the frontier uses the profile's own gains"
        raise ApiError(422, f"{exc}{hint}") from exc
    return frontier(problem, axis=axis, max_points=points, max_time_s=ctx.settings.solve_max_time_s)


def _gain_spec(gains: str | None) -> GainSpec | None:
    """The `gains` query parameter parsed; its errors are located under `query.gains`."""
    if gains is None:
        return None
    try:
        return GainSpec.model_validate(loads(gains))
    except JsonTextError as exc:
        raise ApiError(422, f"{where(exc.loc, 'query.gains')}: {exc}") from None
    except ValidationError as exc:
        raise RequestValidationError([
            {**error, "loc": ("query", "gains", *error["loc"])}
            for error in exc.errors(include_url=False)
        ]) from exc


@router.get(
    "/{profile_id}/frontier", response_model=Frontier,
    responses={200: {"content": {SVG: {"schema": {"type": "string"}}}}}
    | problem_responses(404, 422),
    summary="The Pareto frontier of gain against a cost (JSON, or SVG)",
)
def get_frontier(
    profile_id: str, request: Request, ctx: Ctx, session: Db,
    axis: Literal["params", "flops", "latency_ms", "memory_bytes"] = "params",
    max_points: Annotated[int, Query(ge=2, le=200)] = 20,
    format: Literal["json", "svg"] | None = None,
    gains: Annotated[str | None, Query(
        max_length=65536,
        description='Gains as JSON, as in POST /v1/plans (e.g. `{"methods": {"lora": 1.0}}`); '
        "default: the profile's own.",
    )] = None,
) -> Response:
    """Best gain for each cost cap on `axis`; SVG with `Accept: image/svg+xml` or `?format=svg`."""
    points = min(max_points, ctx.settings.frontier_max_points)
    spec = _gain_spec(gains)
    key = (profile_id, axis, points, None if spec is None else spec.model_dump_json())
    front = ctx.frontiers.get_or_load(
        key, lambda: _frontier(ctx, session, profile_id, axis, points, spec)
    )
    wants_svg = format == "svg" or (format is None and SVG in request.headers.get("accept", ""))
    if wants_svg:
        title = f"Pareto frontier of profile {profile_id} ({axis})"
        return Response(frontier_svg(front, title), media_type=SVG)
    return JSONResponse(front.model_dump(mode="json"))


@router.post(
    "/{profile_id}/gains", status_code=202, response_model=JobOut,
    responses=problem_responses(403, 404, 422, 429),
    summary="Estimate a profile's gains (prior, gradient or probe): a job storing a new profile",
)
def create_gains_job(
    profile_id: str, body: GainsRequest, request: Request, ctx: Ctx, session: Db,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """202 with a queued `gains` job; when it succeeds, its `profile_id` is the new profile (same
    candidates and costs, each with `gain`, `gain_source`, `gain_details`) and, for `gradient`,
    its `result` is the GainReport. An equal request joins a queued or running job."""

    def produce() -> Outcome:
        kind = load_profile(ctx, session, profile_id).task_kind
        task = None if body.task is None else checked_task(body.task, ctx, session, kind)
        spec = GainsJob(profile_id=profile_id, **body.model_copy(update={"task": task}).model_dump())
        return queue_task_job(ctx, session, "gains", spec)

    return respond(session, request, idempotency_key, body, produce)
