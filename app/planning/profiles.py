"""Loading stored profiles as `profiler.schema.Profile` objects, cached per process."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.dependencies import Context
from app.errors import found
from app.store.tables import ProfileRow
from profiler.schema import Profile


def profile_row(session: Session, profile_id: str) -> ProfileRow:
    """The stored profile row, or a 404."""
    return found(session.get(ProfileRow, profile_id), "profile", profile_id)


def load_profile(ctx: Context, session: Session, profile_id: str) -> Profile:
    """The parsed profile (profiles never change once stored, so parses are cached)."""
    return ctx.profiles.get_or_load(
        profile_id,
        lambda: Profile.model_validate_json(profile_row(session, profile_id).body),
    )
