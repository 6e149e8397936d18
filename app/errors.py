"""RFC 9457 problem details: one error shape for every failure the API returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.bodies import AsciiJSONResponse

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ProblemDetail(BaseModel):
    """An RFC 9457 problem: `type`, `title`, `status`, `detail`, optional field `errors`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For validation errors: each invalid field and why."
    )


T = TypeVar("T")


class ApiError(Exception):
    """An error the API reports as a problem with this status and detail."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def found(row: T | None, noun: str, key: str) -> T:
    """Return `row`, or raise a 404 saying no `noun` has id `key`."""
    if row is None:
        raise ApiError(404, f"no {noun} with id {key!r}")
    return row


def problem_response(
    status: int, detail: str, *, instance: str | None = None,
    errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
) -> AsciiJSONResponse:
    """A problem+json response."""
    body = ProblemDetail(
        title=HTTPStatus(status).phrase, status=status, detail=detail,
        instance=instance, errors=errors,
    )
    return AsciiJSONResponse(
        jsonable_encoder(body, exclude_none=True), status_code=status,
        media_type=PROBLEM_JSON, headers=headers,
    )


def _field_errors(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    items = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type")}
        for e in errors
    ]
    first = items[0] if items else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"]) or "body"
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    return f"{where}: {first['msg']}{more}", items


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (for a 405's Allow)."""
    methods: set[str] = set()
    for pattern, route_methods in request.app.state.route_methods:
        if pattern.match(request.url.path):
            methods |= route_methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error (HTTP, validation, ours, unexpected) as problem+json."""

    async def http_error(request: Request, exc: StarletteHTTPException) -> AsciiJSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(exc.status_code, detail, instance=request.url.path, headers=headers,
                                errors=getattr(exc, "errors", None))

    async def validation_error(request: Request, exc: RequestValidationError) -> AsciiJSONResponse:
        detail, items = _field_errors(list(exc.errors()))
        return problem_response(422, detail, instance=request.url.path, errors=items)

    async def model_error(request: Request, exc: ValidationError) -> AsciiJSONResponse:
        detail, items = _field_errors(exc.errors(include_url=False))
        return problem_response(422, detail, instance=request.url.path, errors=items)

    async def api_error(request: Request, exc: ApiError) -> AsciiJSONResponse:
        return problem_response(
            exc.status, exc.detail, instance=request.url.path, headers=exc.headers
        )

    async def unexpected(request: Request, exc: Exception) -> AsciiJSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        detail = "internal error; see the server log"
        return problem_response(500, detail, instance=request.url.path)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, model_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json bodies for these statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
        }
        for status in statuses
    }
