"""The tables: plans and their problems, profiles, jobs, datasets, idempotency records and service instances."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime, also on databases that drop the zone (SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def new_id() -> str:
    """A fresh random id."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the service's tables."""

    type_annotation_map = {datetime: UTCDateTime(), dict: JSON()}


class ProfileRow(Base):
    """A finished profile; `cache_key` identifies what was measured and how."""

    __tablename__ = "profiles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(64), unique=True)
    model_name: Mapped[str] = mapped_column(String(256))
    total_params: Mapped[int] = mapped_column(Integer)
    num_candidates: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    body: Mapped[str] = mapped_column(Text)


class JobRow(Base):
    """A job (`kind`: profile, gains or validation); workers claim queued ones with a conditional UPDATE.

    `spec` is what to profile (profile jobs) or the request (other kinds); `result` is what a
    finished gains or validation job reports; `message` is the latest progress note.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created", "state", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    kind: Mapped[str] = mapped_column(String(16), default="profile", server_default="profile")
    cache_key: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict] = mapped_column()
    options: Mapped[dict] = mapped_column()
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict | None] = mapped_column(nullable=True)
    cached: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    instance: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The service instance (`InstanceRow`) whose worker holds the claim."""
    profile_id: Mapped[str | None] = mapped_column(
        ForeignKey("profiles.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ProblemRow(Base):
    """A solver problem, stored once per distinct content (keyed by its SHA-256)."""

    __tablename__ = "problems"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class PlanRow(Base):
    """A solved plan with the problem it solved and where its gains came from."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile_id: Mapped[str | None] = mapped_column(
        ForeignKey("profiles.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    plan: Mapped[dict] = mapped_column()
    source: Mapped[dict] = mapped_column()
    problem_hash: Mapped[str] = mapped_column(ForeignKey("problems.hash"))


class IdempotencyRow(Base):
    """The stored response of a POST sent with an Idempotency-Key."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    location: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    instance: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The service instance handling the request (while `status_code` is unset)."""


class DatasetRow(Base):
    """A labelled dataset uploaded as JSONL or NPZ; `body` holds the bytes as uploaded."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class InstanceRow(Base):
    """A running service process (a replica): where it runs and when it last said it is alive."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
