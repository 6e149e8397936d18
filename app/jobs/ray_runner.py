"""The Ray runner: jobs fanned out as Ray tasks, one per measurement (profiling) or per training run (gains, validation).

Chosen with `PEFT_PLANNER_JOBS=ray`. The service process is the Ray driver:
a dispatcher thread claims queued jobs from the job table (the source of
truth, as for the local runner) and runs each in a thread that reads the
job kind's payload (`app.jobs.kinds`), submits `prepare`, one task per unit
of each stage (`app.jobs.ray_remote`), and `assemble`, then stores the output
(a profile, a gains profile and report, a validation). Only the driver
touches the database, and writes only while it still owns the job's claim,
so a job taken over by a restarted service, or cancelled, is never finished twice.

Faults: a task whose worker process dies is retried by Ray up to
`PEFT_PLANNER_RAY_TASK_RETRIES` times; an exception in a task, retries
exhausted, or no task finishing for `PEFT_PLANNER_RAY_STALL_TIMEOUT_S`
(e.g. tasks asking for a GPU the cluster lacks) fail the job with the
reason. Cancelling a job force-cancels its outstanding tasks.

`ray` is an optional extra (`pip install .[ray]`): this module and `app.jobs.ray_remote` import it,
and `app.jobs.create_runner` imports this module only when the Ray runner is chosen.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import ray
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from ray import ObjectRef
from ray.exceptions import RayTaskError, TaskCancelledError, WorkerCrashedError
from sqlalchemy import Engine

from app.jobs.execute import public
from app.jobs.kinds import KINDS
from app.jobs.kinds.base import JobOutput
from app.jobs.ray_remote import assemble_job, prepare_job, run_unit
from app.jobs.runner import JobRunner
from app.settings import Settings
from app.store import jobs
from app.store.tables import JobRow
from profiler.errors import ProfileError

log = logging.getLogger(__name__)
CHECK_EVERY_S = 0.5
WAIT_S = 0.2


class RaySettings(BaseSettings):
    """Ray-specific settings, read from `RAY_ADDRESS` and `PEFT_PLANNER_RAY_*`."""

    model_config = SettingsConfigDict(env_prefix="PEFT_PLANNER_RAY_", extra="ignore")

    address: str | None = Field(
        default=None, validation_alias="RAY_ADDRESS",
        description="An existing cluster (e.g. ray://head:10001); unset: start a local Ray instance.",
    )
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of the local instance; unset: all.")
    max_jobs: int = Field(default=2, ge=1, description="Jobs the driver runs at once.")
    task_retries: int = Field(default=2, ge=0, description="Retries of a task whose worker died.")
    stall_timeout_s: float = Field(
        default=900.0, gt=0, description="Fail a job when none of its tasks finishes for this long."
    )


class JobFailed(Exception):
    """The job cannot succeed; the message is the reason stored on the job."""


class JobStopped(Exception):
    """The job was cancelled, taken over, or the service is stopping: leave it as it is."""


def resources(options: dict[str, Any], cluster_gpus: float) -> dict[str, float]:
    """Ray resources each task of a job asks for: one GPU on CUDA, else the CPU threads it runs with."""
    device = options.get("device", "auto")
    gpu = device == "cuda" or (device == "auto" and cluster_gpus > 0)
    return {"num_cpus": float(options.get("threads") or 1), "num_gpus": 1.0 if gpu else 0.0}


class RayRunner(JobRunner):
    """Runs jobs on a Ray cluster, or on a local Ray instance when `RAY_ADDRESS` is unset."""

    def __init__(self, settings: Settings, engine: Engine, ray_settings: RaySettings | None = None,
                 instance: str | None = None):
        super().__init__(settings, engine, instance)
        self.ray_settings = ray_settings or RaySettings()
        self.worker = f"ray:{os.uname().nodename[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claims = itertools.count(1)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._runs: dict[str, _JobRun] = {}
        self._lock = threading.Lock()
        self._dispatcher: threading.Thread | None = None
        self._owns_ray = False

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called."""
        return self._stop.is_set()

    def begin(self) -> None:
        if not ray.is_initialized():
            address = self.ray_settings.address or "local"
            extra = {"num_cpus": self.ray_settings.num_cpus, "include_dashboard": False} if address == "local" else {}
            ray.init(address=address, namespace="peft-planner", log_to_driver=False, **extra)
            self._owns_ray = True
        self._dispatcher = threading.Thread(target=self._dispatch, name="ray-dispatcher", daemon=True)
        self._dispatcher.start()

    def _dispatch(self) -> None:
        """Claim queued jobs while fewer than `max_jobs` run; each claim has its own id.

        A job re-queued while this driver still runs it (a takeover) and claimed
        here again must not look owned to the first run, hence one id per claim.
        """
        while not self._stop.is_set():
            with self._lock:
                for claim in [c for c, run in self._runs.items() if not run.thread.is_alive()]:
                    del self._runs[claim]
                free = len(self._runs) < self.ray_settings.max_jobs
            claim = f"{self.worker}:{next(self._claims)}"
            job = jobs.claim_next(self.engine, claim, self.instance) if free else None
            if job is None:
                self._wake.wait(self.settings.worker_poll_s)
                self._wake.clear()
                continue
            run = _JobRun(self, job, claim)
            with self._lock:
                self._runs[claim] = run
            run.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=10)
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.stop.set()
        for run in runs:
            run.thread.join(timeout=30)
            self.release("the service stopped while the job was running", run.worker)
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def submit(self, job_id: str) -> None:
        """Wake the dispatcher so the job is claimed without waiting for the next poll."""
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        """Cancel the job's Ray tasks now (other drivers notice the state at their next check)."""
        with self._lock:
            for run in self._runs.values():
                if run.job.id == job_id:
                    run.stop.set()

    def healthy(self) -> bool:
        alive = self._dispatcher is not None and self._dispatcher.is_alive()
        return alive and ray.is_initialized()


class _JobRun:
    """One claimed job on the driver: submit its tasks, follow them, record the outcome."""

    def __init__(self, runner: RayRunner, job: JobRow, claim: str):
        self.runner, self.job = runner, job
        self.engine, self.worker = runner.engine, claim
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._main, name=f"ray-job-{job.id[:8]}", daemon=True)
        self._outstanding: list[ObjectRef] = []
        self._checked = 0.0
        self._started = time.monotonic()

    def _main(self) -> None:
        try:
            self._run()
        except JobStopped:
            log.info("job %s stopped (cancelled, taken over or shutting down)", self.job.id)
        except (JobFailed, ValueError) as exc:  # ValueError: the payload's ProfileError, DatasetError
            jobs.finish(self.engine, self.job.id, self.worker, state="failed",
                        error=public(str(exc), self.runner.settings))
        except Exception as exc:  # noqa: BLE001 - any other error fails the job with its name, as the local runner does
            log.error("job %s failed:\n%s", self.job.id, traceback.format_exc())
            jobs.finish(self.engine, self.job.id, self.worker, state="failed",
                        error=f"{type(exc).__name__}: {exc}")
        finally:
            self._cancel_outstanding()

    def _run(self) -> None:
        kind = KINDS.get(self.job.kind)
        if kind is None:
            raise JobFailed(f"unknown job kind {self.job.kind!r}")
        payload = kind.payload(self.engine, self.job, self.runner.settings)
        res = resources(kind.task_options(self.job), ray.cluster_resources().get("GPU", 0.0))
        cpus, retries = int(res["num_cpus"]), self.runner.ray_settings.task_retries
        prepared, summary_ref = prepare_job.options(
            name=self._name("prepare"), max_retries=retries, **res
        ).remote(self.job.kind, payload, cpus)
        summary = self._gather({summary_ref: "prepare"}, res)[summary_ref]
        units: dict[str, list[str]] = summary["units"]
        total = sum(len(labels) for labels in units.values())
        self._progress(0, total, force=True)
        results, finished = [], {}
        start = time.perf_counter()
        for stage, labels in units.items():
            for index, label in enumerate(labels):
                result, seconds = run_unit.options(
                    name=self._name(stage, index), max_retries=retries, **res
                ).remote(self.job.kind, prepared, stage, index, cpus)
                results.append(result)
                finished[seconds] = f"{stage} task {index + 1} of {len(labels)} ({label})"
        self._gather(finished, res, lambda n: self._progress(n, total, force=n == total))
        counts = {stage: len(labels) for stage, labels in units.items()}
        output_ref = assemble_job.options(name=self._name("assemble"), max_retries=retries, num_cpus=1).remote(
            self.job.kind, prepared, counts, time.perf_counter() - start, *results)
        output = self._gather({output_ref: "assemble"}, res)[output_ref]
        self._finish(kind.store(self.engine, self.job, output))

    def _name(self, stage: str, index: int = 0) -> str:
        """The Ray task name (and worker process title, after `ray::`) of one task of this job."""
        return f"peft-planner:{stage}:{self.job.id}:{index}"

    def _finish(self, output: JobOutput) -> None:
        if not jobs.finish(self.engine, self.job.id, self.worker, state="succeeded", profile_id=output.profile_id,
                           result=output.result):
            log.info("job %s was no longer ours when its output was stored", self.job.id)

    def _gather(self, refs: dict[ObjectRef, str], res: dict[str, float],
                on_done: Callable[[int], None] | None = None) -> dict[ObjectRef, Any]:
        """Wait for every ref (labelled for errors); stop on cancel or takeover, fail on errors or a stall."""


        pending, values = list(refs), {}
        self._outstanding = pending
        last = time.monotonic()
        stall = self.runner.ray_settings.stall_timeout_s
        while pending:
            self._check()
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=WAIT_S, fetch_local=False)
            self._outstanding = pending
            for ref in ready:
                try:
                    values[ref] = ray.get(ref)
                except RayTaskError as exc:
                    cause = exc.cause
                    reason = str(cause) if isinstance(cause, (ProfileError, ValueError)) else \
                        f"{type(cause).__name__}: {cause}"
                    raise JobFailed(f"{refs[ref]}: {reason}") from exc
                except TaskCancelledError as exc:
                    self._check()
                    raise JobFailed(f"{refs[ref]}: cancelled outside the service") from exc
                except WorkerCrashedError as exc:
                    self._check()  # a forced cancel reads as a crash
                    raise JobFailed(f"{refs[ref]}: the Ray worker running it died "
                                    f"{self.runner.ray_settings.task_retries + 1} time(s)") from exc
                except ray.exceptions.RayError as exc:
                    raise JobFailed(f"{refs[ref]}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
                if on_done is not None:
                    on_done(len(values))
            if ready:
                last = time.monotonic()
            elif time.monotonic() - last > stall:
                asked = ", ".join(f"{k}={v:g}" for k, v in res.items() if v)
                raise JobFailed(f"no task finished in {stall:g} s ({len(pending)} waiting); "
                                f"the Ray cluster may lack the resources they ask for ({asked})")
        return values

    def _check(self) -> None:
        """Raise JobStopped if the job was cancelled here, the service is stopping, or the claim is gone;
        JobFailed once it has run past the job time limit."""
        if self.stop.is_set() or self.runner.stopping:
            raise JobStopped("stopping")
        limit = self.runner.settings.job_max_s
        if time.monotonic() - self._started > limit:
            raise JobFailed(f"ran past the time limit of {limit:g} s (PEFT_PLANNER_JOB_MAX_S)")
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            if not jobs.still_owned(self.engine, self.job.id, self.worker):
                raise JobStopped("the job is no longer ours")

    def _progress(self, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            if not jobs.report_progress(self.engine, self.job.id, self.worker, done, total):
                raise JobStopped("the job is no longer ours")

    def _cancel_outstanding(self) -> None:
        for ref in self._outstanding:
            ray.cancel(ref, force=True)
        self._outstanding = []
