"""Stored plans and the (deduplicated) problems they solved."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.store.db import writing
from app.store.paging import page_of
from app.store.tables import PlanRow, ProblemRow, new_id, utcnow

_PLANS, _PROBLEMS = PlanRow.__table__, ProblemRow.__table__
_INSERT_PLAN = _PLANS.insert()
# A problem stored meanwhile by another request is no error (the same statement on both databases).
_INSERT_PROBLEM = {
    name: insert(_PROBLEMS).on_conflict_do_nothing(index_elements=["hash"])
    for name, insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))
}
_PROBLEM_STORED = select(_PROBLEMS.c.hash).where(_PROBLEMS.c.hash == bindparam("hash"))


def add(
    session: Session, plan: dict, source: dict, problem_hash: str,
    problem_json: str, profile_id: str | None,
) -> PlanRow:
    """Store a plan and, unless already stored, its problem; commits once.

    Plans are written with Core statements on the session's connection: the
    ORM unit of work costs more than the rest of a repeated plan request.
    The problem is inserted with ON CONFLICT DO NOTHING (SQLite and
    PostgreSQL), so a problem another request stores meanwhile is no error.
    """
    row = PlanRow(
        id=new_id(), created_at=utcnow(), plan=plan, source=source,
        problem_hash=problem_hash, profile_id=profile_id,
    )
    connection = session.connection()
    stored = connection.execute(_PROBLEM_STORED, {"hash": problem_hash}).first()
    with writing(session):
        if stored is None:
            connection.execute(_INSERT_PROBLEM[connection.dialect.name], {"hash": problem_hash, "body": problem_json})
        connection.execute(_INSERT_PLAN, {
            "id": row.id, "created_at": row.created_at, "plan": plan, "source": source,
            "problem_hash": problem_hash, "profile_id": profile_id,
        })
        session.commit()
    return row


def page(
    session: Session, limit: int, offset: int, profile_id: str | None = None
) -> tuple[list[PlanRow], int]:
    """Plans newest first, and how many there are in all (for this profile, if given)."""
    where = () if profile_id is None else (PlanRow.profile_id == profile_id,)
    return page_of(session, PlanRow, limit, offset, *where)


def problem_body(session: Session, problem_hash: str) -> str | None:
    """The JSON of a stored problem."""
    row = session.get(ProblemRow, problem_hash)
    return None if row is None else row.body
