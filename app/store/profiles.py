"""Stored profiles, keyed by id and by the cache key of what was measured."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.store.paging import page_of
from app.store.tables import ProfileRow, new_id


def by_cache_key(session: Session, cache_key: str) -> ProfileRow | None:
    """The profile stored under this cache key, if any."""
    return session.scalars(select(ProfileRow).where(ProfileRow.cache_key == cache_key)).first()


def save(
    session: Session, cache_key: str, body: str, model_name: str,
    total_params: int, num_candidates: int,
) -> ProfileRow:
    """Store a profile JSON; if one with this key exists already, return that one."""
    row = ProfileRow(
        id=new_id(), cache_key=cache_key, body=body, model_name=model_name,
        total_params=total_params, num_candidates=num_candidates,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = by_cache_key(session, cache_key)
        if existing is None:
            raise
        return existing
    return row


def page(session: Session, limit: int, offset: int) -> tuple[list[ProfileRow], int]:
    """Profiles newest first, and how many there are in all."""
    return page_of(session, ProfileRow, limit, offset)
