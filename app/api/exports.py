"""GET /v1/plans/{id}/peft-config: a stored plan as Hugging Face peft configs, and what does not fit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.context import Db
from app.errors import ApiError, found, problem_responses
from app.store.tables import PlanRow
from profiler.errors import ProfileError
from profiler.export import PeftExport, Unsupported, export_plan

router = APIRouter(prefix="/v1/plans", tags=["plans"])


class PeftConfigOut(BaseModel):
    """peft configs for a plan (each `peft_type` plus its constructor arguments) and what is left out."""

    plan_id: str
    configs: list[dict] = Field(description="Build with peft's config class of `peft_type`, then `get_peft_model`.")
    exported: list[str]
    unsupported: list[Unsupported]
    complete: bool = Field(description="Every selected candidate is in the configs.")


@router.get("/{plan_id}/peft-config", response_model=PeftConfigOut, responses=problem_responses(404, 422))
def plan_peft_config(
    plan_id: str, session: Db,
    token_dim: Annotated[int | None, Query(ge=1, le=1_000_000, description="Embedding width, for prompt tuning.")] = None,
) -> PeftConfigOut:
    """The peft export of a stored plan's selected candidates."""
    row = found(session.get(PlanRow, plan_id), "plan", plan_id)
    try:
        export: PeftExport = export_plan(list(row.plan.get("selected", [])), token_dim)
    except ProfileError as exc:
        raise ApiError(422, str(exc)) from exc
    return PeftConfigOut(plan_id=plan_id, configs=export.configs, exported=export.exported,
                         unsupported=export.unsupported, complete=export.complete)
