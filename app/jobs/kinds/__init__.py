"""The job kinds, one module each, and their registry: adding a kind is one module and one line in KINDS.

A kind is a function `run(engine, job, settings, watch) -> JobOutput` (`app.jobs.kinds.base`).
"""

from app.jobs.kinds.base import Kind
from app.jobs.kinds.gains import run_gains
from app.jobs.kinds.profile import run_profile
from app.jobs.kinds.validation import run_validation

KINDS: dict[str, Kind] = {"profile": run_profile, "gains": run_gains, "validation": run_validation}

__all__ = ["KINDS", "Kind"]
