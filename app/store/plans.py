"""Stored plans and the (deduplicated) problems they solved."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.store.jobs import new_id
from app.store.tables import PlanRow, ProblemRow


def add(
    session: Session, plan: dict, source: dict, problem_hash: str,
    problem_json: str, profile_id: str | None,
) -> PlanRow:
    """Store a plan and, unless already stored, its problem; commits."""
    if session.get(ProblemRow, problem_hash) is None:
        session.add(ProblemRow(hash=problem_hash, body=problem_json))
        try:
            session.commit()
        except IntegrityError:  # stored meanwhile by a concurrent request
            session.rollback()
    row = PlanRow(
        id=new_id(), plan=plan, source=source, problem_hash=problem_hash, profile_id=profile_id
    )
    session.add(row)
    session.commit()
    return row


def page(
    session: Session, limit: int, offset: int, profile_id: str | None = None
) -> tuple[list[PlanRow], int]:
    """Plans newest first, and how many there are in all (for this profile, if given)."""
    where = () if profile_id is None else (PlanRow.profile_id == profile_id,)
    rows = session.scalars(
        select(PlanRow).where(*where)
        .order_by(PlanRow.created_at.desc(), PlanRow.id).limit(limit).offset(offset)
    ).all()
    total = session.scalar(select(func.count()).select_from(PlanRow).where(*where))
    return list(rows), int(total or 0)


def problem_body(session: Session, problem_hash: str) -> str | None:
    """The JSON of a stored problem."""
    row = session.get(ProblemRow, problem_hash)
    return None if row is None else row.body
