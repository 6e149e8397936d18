"""Idempotency-Key for POSTs: a retried request gets the first one's response."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Engine, Select, delete, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import ApiError
from app.store.tables import IdempotencyRow, utcnow

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
            jsonable_encoder(self.body), ensure_ascii=True, allow_nan=False, separators=(",", ":")
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

    The same key with a different body is a 422; a retry while the first request is still being
    handled is a 409. Failed requests store nothing, so they can be retried with the same key; a
    request that never finished (its process died) is abandoned once it is older than
    `settings.idempotency_pending_s` (or once its service instance is seen dead), and its key works again.
    """
    if key is None:
        return produce().response()
    scope = f"{request.method} {request.url.path}"
    digest = hashlib.sha256(
        json.dumps(jsonable_encoder(payload), sort_keys=True).encode()
    ).hexdigest()
    ctx = request.app.state.context
    replay = _claim(session, scope, key, digest, ctx.settings.idempotency_pending_s, ctx.instance)
    if replay is not None:
        return replay
    try:
        outcome = produce()
        body = outcome.json()
    except BaseException:
        session.rollback()
        session.execute(delete(IdempotencyRow).where(
            IdempotencyRow.scope == scope, IdempotencyRow.key == key, IdempotencyRow.status_code.is_(None)))
        session.commit()
        raise
    row = session.get(IdempotencyRow, (scope, key)) or IdempotencyRow(scope=scope, key=key, request_hash=digest)
    row.status_code, row.body, row.location = outcome.status, body, outcome.location
    session.merge(row)
    session.commit()
    return outcome.response()


def _claim(session: Session, scope: str, key: str, digest: str, pending_s: float, instance: str) -> Response | None:
    """None once this request owns the key (its pending row is stored); else the stored response to replay."""
    for _ in range(3):
        session.add(IdempotencyRow(scope=scope, key=key, request_hash=digest, instance=instance))
        try:
            session.commit()
            return None
        except IntegrityError:
            session.rollback()
        row = session.get(IdempotencyRow, (scope, key), populate_existing=True)
        if row is None:
            continue  # abandoned and released meanwhile
        if row.request_hash != digest:
            raise ApiError(422, "this Idempotency-Key was used with a different request body")
        if row.status_code is not None:
            return Outcome(row.status_code, json.loads(row.body), row.location).response(replayed=True)
        if row.created_at > utcnow() - timedelta(seconds=pending_s):
            raise ApiError(409, "a request with this Idempotency-Key is still being processed; retry later",
                           headers={"Retry-After": "1"})
        session.execute(delete(IdempotencyRow).where(
            IdempotencyRow.scope == scope, IdempotencyRow.key == key, IdempotencyRow.status_code.is_(None),
            IdempotencyRow.created_at == row.created_at))
        session.commit()
    raise ApiError(409, "this Idempotency-Key is contended by concurrent requests; retry", headers={"Retry-After": "1"})


def release_pending(engine: Engine, live: Select[tuple[str]]) -> int:
    """Delete the keys of unanswered requests (no stored response) whose service instance is not `live` (an id
    subquery; dead, or none recorded): nobody is handling them any more. Returns how many."""
    with Session(engine) as session:
        n = session.execute(delete(IdempotencyRow).where(
            IdempotencyRow.status_code.is_(None),
            or_(IdempotencyRow.instance.is_(None), IdempotencyRow.instance.not_in(live)))).rowcount
        session.commit()
    return n
