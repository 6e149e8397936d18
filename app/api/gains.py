"""POST /v1/profiles/{id}/gains: a job that stores a new profile with every candidate's gain estimated."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.jobs import JobOut
from app.api.task_jobs import checked_task, queue_task_job
from app.context import Ctx, Db
from app.errors import problem_responses
from app.idempotency import IdempotencyKey, Outcome, respond
from app.jobs.requests import GainsJob, GainsRequest
from app.profile_store import profile_row

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])


@router.post(
    "/{profile_id}/gains", status_code=202, response_model=JobOut,
    responses=problem_responses(403, 404, 422, 429, 501),
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
        profile_row(session, profile_id)
        task = None if body.task is None else checked_task(body.task, ctx, session)
        spec = GainsJob(profile_id=profile_id, **body.model_copy(update={"task": task}).model_dump())
        return queue_task_job(ctx, session, "gains", spec)

    return respond(session, request, idempotency_key, body, produce)
