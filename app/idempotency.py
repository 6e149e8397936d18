"""Idempotency-Key for POSTs: a retried request gets the first one's response."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import ApiError
from app.store.tables import IdempotencyRow

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=255,
        description="Send the same key when retrying: the first request's response is returned.",
    ),
]


@dataclass
class Outcome:
    """A handler's answer: status, JSON body and optional Location."""

    status: int
    body: Any
    location: str | None = None

    def json(self) -> str:
        """The body as JSON (pydantic models serialize themselves, without a detour)."""
        if isinstance(self.body, BaseModel):
            return self.body.model_dump_json()
        return json.dumps(
            jsonable_encoder(self.body), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )

    def response(self, replayed: bool = False) -> Response:
        """As an HTTP response."""
        headers = {"Location": self.location} if self.location else {}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(
            self.json(), status_code=self.status, headers=headers, media_type="application/json"
        )


def respond(
    session: Session, request: Request, key: str | None, payload: Any,
    produce: Callable[[], Outcome],
) -> Response:
    """Run `produce` once per (route, key); replay its stored outcome on a retry.

    The same key with a different body is a 422; a retry while the first
    request is still being handled is a 409. Failed requests store nothing,
    so they can be retried with the same key.
    """
    if key is None:
        return produce().response()
    scope = f"{request.method} {request.url.path}"
    digest = hashlib.sha256(
        json.dumps(jsonable_encoder(payload), sort_keys=True).encode()
    ).hexdigest()
    session.add(IdempotencyRow(scope=scope, key=key, request_hash=digest))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return _replay(session, scope, key, digest)
    try:
        outcome = produce()
    except BaseException:
        session.rollback()
        session.query(IdempotencyRow).filter_by(scope=scope, key=key).delete()
        session.commit()
        raise
    row = session.get(IdempotencyRow, (scope, key))
    row.status_code = outcome.status
    row.body = outcome.json()
    row.location = outcome.location
    session.commit()
    return outcome.response()


def _replay(session: Session, scope: str, key: str, digest: str) -> Response:
    row = session.get(IdempotencyRow, (scope, key), populate_existing=True)
    if row is None:
        raise ApiError(409, "a request with this Idempotency-Key was just abandoned; retry")
    if row.request_hash != digest:
        raise ApiError(422, "this Idempotency-Key was used with a different request body")
    if row.status_code is None:
        raise ApiError(409, "a request with this Idempotency-Key is still being processed")
    return Outcome(row.status_code, json.loads(row.body), row.location).response(replayed=True)
