"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.bodies import StrictRoute
from app.dependencies import Ctx
from app.errors import ApiError, problem_responses

router = APIRouter(tags=["health"], route_class=StrictRoute)


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get(
    "/readyz", summary="Readiness: database and job runner", responses=problem_responses(503)
)
def readyz(ctx: Ctx) -> dict[str, str]:
    """200 when the database answers and the job runner can run jobs, else 503."""
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ApiError(503, f"database unavailable: {exc}") from exc
    if ctx.runner is None or not ctx.runner.healthy():
        raise ApiError(503, "the job runner is not running")
    return {"status": "ready"}


@router.get(
    "/metrics", summary="Prometheus metrics",
    response_class=Response, responses={200: {"content": {"text/plain": {}}}},
)
def metrics(ctx: Ctx) -> Response:
    """Request counts and latency by route, solve time, and jobs by state."""
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
