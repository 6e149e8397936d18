"""Paging of the list endpoints: rows newest first, and how many match in all."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

R = TypeVar("R")


def page_of(session: Session, table: type[R], limit: int, offset: int, *where: Any) -> tuple[list[R], int]:
    """Rows of `table` matching `where`, newest first (then by id), `limit` from `offset`; and the match count."""
    rows = session.scalars(
        select(table).where(*where)
        .order_by(table.created_at.desc(), table.id).limit(limit).offset(offset)  # type: ignore[attr-defined]
    ).all()
    total = session.scalar(select(func.count()).select_from(table).where(*where))
    return list(rows), int(total or 0)
