"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import __version__
from app.api import catalog, datasets, health, jobs, plans, profiles
from app.bodies import AsciiJSONResponse
from app.dependencies import Context
from app.errors import PROBLEM_JSON, ProblemDetail, install_error_handlers, problem_responses
from app.guards import ApiKeyMiddleware, BodyLimitMiddleware
from app.instance import Instance, recover
from app.jobs import create_runner
from app.metrics import Metrics, MetricsMiddleware
from app.settings import Settings, get_settings
from app.store import create_store_engine, init_db, session_factory
from app.store import jobs as job_store


def create_app(settings: Settings | None = None, *, run_jobs: bool = True) -> FastAPI:
    """Build the service; with `run_jobs`, its lifespan starts and stops the job runner."""
    settings = settings or get_settings()
    engine = create_store_engine(settings.db)
    init_db(engine)
    instance = Instance(settings, engine)
    recover(engine, settings)
    sessions = session_factory(engine)

    def job_counts() -> dict[str, int]:
        with sessions() as session:
            return job_store.count_by_state(session)

    ctx = Context(settings=settings, engine=engine, sessions=sessions, metrics=Metrics(job_counts),
                  instance=instance.id)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        instance.start()
        if run_jobs:
            ctx.runner = create_runner(settings, engine, instance.id)
            ctx.runner.start()
        try:
            yield
        finally:
            if ctx.runner is not None:
                ctx.runner.stop()
                ctx.runner = None
            instance.stop()
            engine.dispose()

    app = FastAPIOffline(  # /docs and /redoc with their assets served here: they work offline
        title="peft-planner",
        version=__version__,
        description="Plan which parameter-efficient adapters go on which layers, within a budget.",
        lifespan=lifespan,
        default_response_class=AsciiJSONResponse,
        responses=problem_responses(400, 413, 500)
        | (problem_responses(401) if settings.api_key else {}),
    )
    app.state.context = ctx
    install_error_handlers(app)
    routers = [module.router for module in (plans, profiles, jobs, datasets, catalog, health)]
    for router in routers:
        app.include_router(router)
    app.state.route_methods = [
        (route.path_regex, set(route.methods)) for router in routers for route in router.routes
    ]
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key.get_secret_value())
    app.add_middleware(MetricsMiddleware, metrics=ctx.metrics)
    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI schema, with the problem+json schema every error refers to."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description,
            routes=app.routes,
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["ProblemDetail"] = ProblemDetail.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    if status.isdigit() and int(status) >= 400:
                        response["content"] = problem
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema
