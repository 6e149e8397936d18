"""Uploaded datasets: the validated bytes and their summary, one row each (table `datasets`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.store.jobs import new_id
from app.store.tables import Base, utcnow


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


def add(session: Session, name: str, fmt: str, sha256: str, summary: dict, body: bytes) -> DatasetRow:
    """Store a validated dataset; commits."""
    row = DatasetRow(id=new_id(), name=name, format=fmt, sha256=sha256, size_bytes=len(body), summary=summary,
                     body=body)
    session.add(row)
    session.commit()
    return row


def page(session: Session, limit: int, offset: int) -> tuple[list[DatasetRow], int]:
    """Datasets newest first (bodies stay unloaded: the column is deferred), and the total count."""
    rows = session.scalars(select(DatasetRow).order_by(DatasetRow.created_at.desc(), DatasetRow.id)
                           .limit(limit).offset(offset)).all()
    return list(rows), int(session.scalar(select(func.count()).select_from(DatasetRow)) or 0)
