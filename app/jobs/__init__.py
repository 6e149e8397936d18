"""Jobs: the runner interface, the local and Ray runners, the job kinds, and queueing from the API."""

from __future__ import annotations

from sqlalchemy import Engine

from app.jobs.local import LocalRunner
from app.jobs.runner import JobRunner
from app.settings import Settings


def create_runner(settings: Settings, engine: Engine, instance: str | None = None) -> JobRunner:
    """The runner named by `settings.jobs` for service `instance`: local worker processes, or Ray (the `ray` extra)."""
    if settings.jobs == "local":
        return LocalRunner(settings, engine, instance)
    try:
        from app.jobs.ray_runner import RayRunner  # imports ray, an optional extra
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise RuntimeError("PEFT_PLANNER_JOBS=ray needs the ray extra: pip install 'peft-planner[ray]'") from exc
    return RayRunner(settings, engine, instance=instance)
