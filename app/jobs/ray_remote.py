"""What a profiling job runs on Ray workers: prepare, the per-unit fan-out stages, assemble.

Imported only by the Ray runner (it imports `ray`). The profiler (and torch)
is imported inside the task bodies, so the service process that submits
these tasks never loads torch: the driver handles small summaries, and the
bulky objects (the prepared job, each measurement) stay in Ray's object
store and travel from task to task as references.

A job fans out in *stages*. Each stage lists its units after `prepare`, runs
one Ray task per unit, and folds its results into the profile, in order.
Measurement is the only stage today; a per-candidate stage (e.g. probe
fine-tunes, which write each candidate's gain) is one more `Stage` in
`STAGES`, with no change to the runner.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ray

if TYPE_CHECKING:
    from profiler.measure.stages import Prepared
    from profiler.schema import Profile


@dataclass(frozen=True)
class Stage:
    """One kind of per-unit Ray task of a profiling job."""

    name: str
    units: Callable[[Prepared], list[str]]
    """The stage's units as labels, one Ray task each ([] when the job does not ask for this stage)."""
    run: Callable[[Prepared, int], Any]
    """Run unit `index` on a worker; returns a picklable result."""
    fold: Callable[[Prepared, Profile | None, list[Any]], Profile]
    """Fold the stage's results (in unit order) into the profile the previous stages built (None for the first)."""


def _measure_units(prepared: Prepared) -> list[str]:
    return [task.key for task in prepared.units]


def _measure_one(prepared: Prepared, index: int) -> Any:
    from profiler.measure.stages import measure

    return measure(prepared, prepared.units[index])


def _assemble(prepared: Prepared, _profile: Profile | None, measurements: list[Any]) -> Profile:
    from profiler.measure.stages import assemble

    return assemble(prepared, measurements)


MEASURE = Stage("measure", _measure_units, _measure_one, _assemble)
STAGES: dict[str, Stage] = {stage.name: stage for stage in (MEASURE,)}


def _threads(cpus: int) -> None:
    """Use the CPUs Ray reserved for this task (worker processes are reused across tasks)."""
    import torch

    torch.set_num_threads(cpus)


@ray.remote(num_returns=2)
def prepare_job(spec: dict, stored_spec: dict, options: dict, cpus: int, max_params: int) -> tuple[Prepared, dict[str, Any]]:
    """Prepare a job; returns the prepared job (kept in the object store) and a small summary for the driver.

    `spec` is what to build (a directory as this node's absolute path); `stored_spec` is what the profile
    records (a directory relative to the models root).
    """
    from profiler.measure.stages import prepare
    from profiler.schema import ModelSpec, ProfileOptions

    _threads(cpus)
    prepared = prepare(ModelSpec.model_validate(spec), ProfileOptions.model_validate(options), max_params)
    prepared = replace(prepared, spec=ModelSpec.model_validate(stored_spec))
    summary = {
        "total_params": prepared.info.total_params,
        "units": {name: stage.units(prepared) for name, stage in STAGES.items()},
    }
    return prepared, summary


@ray.remote(num_returns=2)
def run_unit(prepared: Prepared, stage: str, index: int, cpus: int) -> tuple[Any, float]:
    """Run one unit of a stage; returns its result (kept in the object store) and its wall time in seconds."""
    _threads(cpus)
    start = time.perf_counter()
    result = STAGES[stage].run(prepared, index)
    return result, time.perf_counter() - start


@ray.remote
def assemble_job(prepared: Prepared, counts: dict[str, int], measure_s: float, *results: Any) -> dict[str, Any]:
    """Fold every stage's results into the Profile; returns its JSON and what the profile table indexes."""
    start = time.perf_counter()
    profile: Profile | None = None
    offset = 0
    for name, count in counts.items():
        profile = STAGES[name].fold(prepared, profile, list(results[offset:offset + count]))
        offset += count
    assert profile is not None, "the measure stage always runs"
    profile.timings.measure_s = measure_s
    profile.timings.assemble_s = time.perf_counter() - start
    return {"body": profile.model_dump_json(), "model": profile.model.name,
            "total_params": profile.model.total_params, "num_candidates": len(profile.candidates)}
