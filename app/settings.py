"""Service settings, read from `PEFT_PLANNER_*` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be configured with; see each field's description."""

    model_config = SettingsConfigDict(env_prefix="PEFT_PLANNER_", extra="ignore")

    db: str = Field(
        default="data/peft-planner.db",
        description="SQLite file path, or a SQLAlchemy database URL (contains '://'), e.g. "
                    "postgresql+psycopg://user:password@host/db for replicas sharing one database.",
    )
    models_root: Path | None = Field(
        default=None,
        description="Directory under which model directories may be profiled; unset: none may.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="When set, /v1 requires `Authorization: Bearer <key>`."
    )
    jobs: Literal["local", "ray"] = Field(default="local", description="Job runner.")
    workers: int = Field(default=1, ge=1, le=64, description="Local worker processes.")
    worker_poll_s: float = Field(default=0.25, gt=0, description="Idle worker poll interval.")
    job_max_attempts: int = Field(
        default=2, ge=1, description="Runs of a job before a restart marks it failed."
    )
    max_body_bytes: int = Field(default=8 * 2**20, ge=1024, description="Largest request body.")
    max_candidates: int = Field(default=20_000, ge=1, description="Most candidates per problem.")
    max_model_params: int = Field(
        default=20_000_000_000, ge=1, description="Largest model a job may profile."
    )
    job_max_s: float = Field(
        default=6 * 3600.0, gt=0, description="Wall-clock limit of one job run; past it the job fails."
    )
    cancel_grace_s: float = Field(
        default=3.0, ge=0, description="How long a cancelled job's worker may run on before it is ended."
    )
    max_queued_jobs: int = Field(default=16, ge=1, description="Queued jobs before 429.")
    solve_max_time_s: float = Field(default=30.0, gt=0, description="Time limit of one solve.")
    max_concurrent_solves: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=1024,
        description="Plan requests computing (building, solving, storing) at once (default: the CPU count); "
                    "more wait up to solve_wait_s for a slot, then get a 503.",
    )
    solve_wait_s: float = Field(default=5.0, ge=0, description="How long a plan request waits for a slot (then 503).")
    idempotency_pending_s: float = Field(
        default=300.0, gt=0,
        description="A keyed request still unanswered after this long is abandoned: its key works again.",
    )
    instance_lease_s: float = Field(
        default=30.0, gt=0,
        description="A service process silent for this long is presumed dead: its running jobs are re-queued "
                    "and its unanswered Idempotency-Keys released (it beats every third of this).",
    )
    frontier_max_points: int = Field(default=50, ge=2, description="Most frontier points.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
