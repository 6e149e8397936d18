"""The job kinds, one module each, and their registry: adding a kind is one module and one line in KINDS.

A kind (`app.jobs.kinds.base.Kind`) runs locally with `run(engine, job, settings, watch) -> JobOutput`,
and on Ray through its `payload` and `store` (the tasks themselves: `app.jobs.ray_remote.REMOTE`).
"""

from app.jobs.kinds.base import Kind
from app.jobs.kinds.gains import GAINS
from app.jobs.kinds.profile import PROFILE
from app.jobs.kinds.validation import VALIDATION

KINDS: dict[str, Kind] = {"profile": PROFILE, "gains": GAINS, "validation": VALIDATION}

__all__ = ["KINDS", "Kind"]
