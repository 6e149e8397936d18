"""Bodies in and out: requests parsed as strict JSON (`profiler.jsontext`, the route class every router
uses), responses rendered as ASCII JSON.

FastAPI parses a JSON body with `json.loads`, which accepts lone surrogates, NaN and nesting deep
enough to break whatever walks the value later: such a body could be stored and then never read
back. Routes of `StrictRoute` parse with `profiler.jsontext.loads` instead; a body it refuses is a
422 naming where (`body.model.config.x: ...`). Responses escape every non-ASCII character, so even a
value stored before these checks (an unpaired surrogate) reads back instead of failing to encode.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from profiler.jsontext import JsonTextError, loads

MAX_LOC_PARTS = 8


def where(loc: tuple[str | int, ...], root: str = "body") -> str:
    """A location as the dotted path the API's errors use (`body.candidates.0.site`), its first
    MAX_LOC_PARTS parts and `...` for a deeper one."""
    parts = [str(part)[:64] for part in (root, *loc)]
    return ".".join(parts[:MAX_LOC_PARTS]) + (".…" if len(parts) > MAX_LOC_PARTS else "")


class BodyError(HTTPException):
    """A 422 for a body that is not strict JSON, with the field error (`type` json_invalid) it reports."""

    def __init__(self, exc: JsonTextError) -> None:
        super().__init__(422, f"{where(exc.loc)}: {exc}")
        self.errors = [{"loc": ["body", *(str(part) for part in exc.loc)], "msg": str(exc), "type": "json_invalid"}]


class StrictRequest(Request):
    """A request whose `json()` is strict JSON; a refused body raises a 422 naming the location."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads(await self.body())
            except JsonTextError as exc:
                raise BodyError(exc) from None
        return self._json


class StrictRoute(APIRoute):
    """An APIRoute that hands its endpoint a StrictRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictRequest(request.scope, request.receive))

        return strict_handler


class AsciiJSONResponse(JSONResponse):
    """A JSON response with every non-ASCII character escaped (`\\uXXXX`): always encodable."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
