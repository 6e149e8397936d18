"""POST /v1/plans/{id}/validation: a job that fine-tunes a plan and reports realized vs predicted gain."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.jobs import JobOut
from app.api.task_jobs import checked_task, queue_task_job
from app.context import Ctx, Db
from app.errors import ApiError, found, problem_responses
from app.idempotency import IdempotencyKey, Outcome, respond
from app.jobs.requests import ValidationJob, ValidationRequest
from app.store.tables import PlanRow

router = APIRouter(prefix="/v1/plans", tags=["plans"])


@router.post(
    "/{plan_id}/validation", status_code=202, response_model=JobOut,
    responses=problem_responses(403, 404, 409, 422, 429, 501),
    summary="Fine-tune a plan for N steps over S seeds: realized vs predicted gain (a job)",
)
def create_validation_job(
    plan_id: str, body: ValidationRequest, request: Request, ctx: Ctx, session: Db,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """202 with a queued `validation` job; its `result` is the PlanValidation. 409 when the plan was
    solved from an inline problem (its ids name no profiled model's modules) or selects nothing."""

    def produce() -> Outcome:
        plan = found(session.get(PlanRow, plan_id), "plan", plan_id)
        if plan.profile_id is None:
            raise ApiError(409, f"plan {plan_id} was solved from an inline problem, not a profile: its candidate "
                           "ids name no profiled model's modules, so it cannot be trained; validate a plan "
                           "made with profile_id")
        if not plan.plan["selected"]:
            raise ApiError(409, f"plan {plan_id} selects no candidates (status {plan.plan['status']}); "
                           "nothing to validate")
        task = checked_task(body.task, ctx, session)
        spec = ValidationJob(plan_id=plan_id, **body.model_copy(update={"task": task}).model_dump())
        return queue_task_job(ctx, session, "validation", spec)

    return respond(session, request, idempotency_key, body, produce)
