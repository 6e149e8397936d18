"""What a job runs on Ray workers: prepare, the per-unit fan-out stages, assemble; one entry per job kind.

Imported only by the Ray runner (it imports `ray`). The profiler (and torch)
is imported inside the task bodies, so the service process that submits
these tasks never loads torch: the driver handles small summaries, and the
bulky objects (the prepared job, each unit's result) stay in Ray's object
store and travel from task to task as references.

A job fans out in *stages*. Each stage lists its units after `prepare`, runs
one Ray task per unit, and folds its results, in order. A kind (`Remote`) is
its prepare step (from the payload its `app.jobs.kinds` entry reads on the
driver), its stages, and its output for the driver's `store`:

* `profile`: one `measure` task per measurement unit, folded into the profile;
* `gains` and `validation`: one `train` task per run of the job's `FanOut`
  (each probe: role bundle, mixture, single candidate, full fine-tuning; or the
  plan and the head-only baseline per validation seed), folded by the same
  function the local runner uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ray

if TYPE_CHECKING:
    from profiler.gains.fanout import FanOut
    from profiler.measure.stages import Prepared
    from profiler.schema import Profile
    from profiler.training.task import Task


@dataclass(frozen=True)
class Stage:
    """One kind of per-unit Ray task of a job."""

    name: str
    units: Callable[[Any], list[str]]
    """The stage's units as labels, one Ray task each ([] when the job does not ask for this stage)."""
    run: Callable[[Any, int], Any]
    """Run unit `index` on a worker; returns a picklable result."""
    fold: Callable[[Any, Any, list[Any]], Any]
    """Fold the stage's results (in unit order) into what the previous stages built (None for the first)."""


@dataclass(frozen=True)
class Remote:
    """A job kind on Ray workers: prepare from the driver's payload, the stages, the output for the driver."""

    prepare: Callable[[dict[str, Any]], Any]
    stages: tuple[Stage, ...]
    output: Callable[[Any, Any, float], dict[str, Any]]
    """(prepared, what the stages folded, the stages' wall time in s) -> small JSON the driver stores."""


def _measure_units(prepared: Prepared) -> list[str]:
    return [task.key for task in prepared.units]


def _measure_one(prepared: Prepared, index: int) -> Any:
    from profiler.measure.stages import measure

    return measure(prepared, prepared.units[index])


def _assemble(prepared: Prepared, _profile: Profile | None, measurements: list[Any]) -> Profile:
    from profiler.measure.stages import assemble

    start = time.perf_counter()
    profile = assemble(prepared, measurements)
    profile.timings.assemble_s = time.perf_counter() - start
    return profile


def _prepare_profile(payload: dict[str, Any]) -> Prepared:
    """`spec` is what to build (a directory as this node's absolute path); `stored_spec` is what the profile
    records (a directory relative to the models root)."""
    from profiler.measure.stages import prepare
    from profiler.schema import ModelSpec, ProfileOptions

    prepared = prepare(ModelSpec.model_validate(payload["spec"]), ProfileOptions.model_validate(payload["options"]),
                       payload["max_params"])
    return replace(prepared, spec=ModelSpec.model_validate(payload["stored_spec"]))


def _profile_output(_prepared: Prepared, profile: Profile, measure_s: float) -> dict[str, Any]:
    """The profile's JSON and what the profile table indexes."""
    profile.timings.measure_s = measure_s
    return {"body": profile.model_dump_json(), "model": profile.model.name,
            "total_params": profile.model.total_params, "num_candidates": len(profile.candidates)}


@dataclass(frozen=True)
class Training:
    """A prepared training job: its task and its fan-out (whose fold gives the driver's JSON)."""

    task: Task | None
    fanout: FanOut[dict[str, Any]]


def _train_one(prepared: Training, index: int) -> Any:
    from profiler.gains.fanout import train

    assert prepared.task is not None
    return train(prepared.task, prepared.fanout.runs[index])


def _prepare_gains(payload: dict[str, Any]) -> Training:
    from profiler.gains.fanout import FanOut
    from profiler.gains.registry import gains_fanout
    from profiler.schema import Profile
    from profiler.training.finetune import TrainConfig

    task = None if payload["task"] is None else payload["task"].build()
    train = None if payload["train"] is None else TrainConfig.model_validate(payload["train"])
    gains = gains_fanout(Profile.model_validate_json(payload["profile"]), payload["source"], task, train,
                         probes=payload["probes"])

    def fold(runs: list[Any], seconds: float) -> dict[str, Any]:
        profile, report = gains.fold(runs, seconds)
        return {"profile": profile.model_dump_json(), "result": None if report is None else report.model_dump(mode="json")}

    return Training(task, FanOut(gains.runs, fold))


def _prepare_validation(payload: dict[str, Any]) -> Training:
    from profiler.gains.fanout import FanOut
    from profiler.training.finetune import TrainConfig
    from profiler.training.validate import validation_fanout

    runs = validation_fanout(payload["selected"], TrainConfig.model_validate(payload["train"]), payload["seeds"],
                             payload["predicted"])
    return Training(payload["task"].build(), FanOut(
        runs.runs, lambda results, seconds: {"result": runs.fold(results, seconds).model_dump(mode="json")}))


MEASURE = Stage("measure", _measure_units, _measure_one, _assemble)
TRAIN = Stage("train", lambda prepared: [run.label for run in prepared.fanout.runs], _train_one,
              lambda _prepared, _previous, results: results)


def _training_output(prepared: Training, results: list[Any], seconds: float) -> dict[str, Any]:
    return prepared.fanout.fold(results, seconds)


REMOTE: dict[str, Remote] = {
    "profile": Remote(_prepare_profile, (MEASURE,), _profile_output),
    "gains": Remote(_prepare_gains, (TRAIN,), _training_output),
    "validation": Remote(_prepare_validation, (TRAIN,), _training_output),
}


def _threads(cpus: int) -> None:
    """Use the CPUs Ray reserved for this task (worker processes are reused across tasks)."""
    import torch

    torch.set_num_threads(cpus)


@ray.remote(num_returns=2)
def prepare_job(kind: str, payload: dict[str, Any], cpus: int) -> tuple[Any, dict[str, Any]]:
    """Prepare a job of `kind`; returns the prepared job (kept in the object store) and its units per stage
    (`{"units": {stage: [label, ...]}}`, small, for the driver)."""
    _threads(cpus)
    remote = REMOTE[kind]
    prepared = remote.prepare(payload)
    return prepared, {"units": {stage.name: stage.units(prepared) for stage in remote.stages}}


@ray.remote(num_returns=2)
def run_unit(kind: str, prepared: Any, stage: str, index: int, cpus: int) -> tuple[Any, float]:
    """Run one unit of a stage; returns its result (kept in the object store) and its wall time in seconds."""
    _threads(cpus)
    start = time.perf_counter()
    result = next(s for s in REMOTE[kind].stages if s.name == stage).run(prepared, index)
    return result, time.perf_counter() - start


@ray.remote
def assemble_job(kind: str, prepared: Any, counts: dict[str, int], fanout_s: float, *results: Any) -> dict[str, Any]:
    """Fold every stage's results, in order; returns the kind's output for the driver to store."""
    remote = REMOTE[kind]
    folded: Any = None
    offset = 0
    for stage in remote.stages:
        count = counts[stage.name]
        folded = stage.fold(prepared, folded, list(results[offset:offset + count]))
        offset += count
    return remote.output(prepared, folded, fanout_s)
