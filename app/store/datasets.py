"""Uploaded datasets: the validated bytes and their summary, one row each (table `datasets`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.store.paging import page_of
from app.store.tables import DatasetRow, new_id


def add(session: Session, name: str, fmt: str, sha256: str, summary: dict, body: bytes) -> DatasetRow:
    """Add a validated dataset to the session (flushed, not committed: the caller builds its response first)."""
    row = DatasetRow(id=new_id(), name=name, format=fmt, sha256=sha256, size_bytes=len(body), summary=summary,
                     body=body)
    session.add(row)
    session.flush()
    return row


def page(session: Session, limit: int, offset: int) -> tuple[list[DatasetRow], int]:
    """Datasets newest first (bodies stay unloaded: the column is deferred), and the total count."""
    return page_of(session, DatasetRow, limit, offset)
