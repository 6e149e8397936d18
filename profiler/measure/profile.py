"""`profile_model`: the one-call profiler (prepare, measure every unit, assemble)."""

from __future__ import annotations

import time
from collections.abc import Callable

from profiler.errors import Cancelled
from profiler.measure.stages import assemble, measure, prepare
from profiler.schema import ModelSpec, Profile, ProfileOptions


def profile_model(spec: ModelSpec, options: ProfileOptions, progress: Callable[[int, int], None] | None = None,
                  should_cancel: Callable[[], bool] | None = None, max_params: int | None = None) -> Profile:
    """Profile every candidate of `spec` under `options`; `progress(done, total)` counts measurement units.

    Raises ProfileError for models, configs or shapes that cannot be profiled (and, before anything is
    measured, for a model of more than `max_params` parameters), Cancelled when `should_cancel()` turns
    true (checked between measurements).
    """
    prepared = prepare(spec, options, max_params)
    total = len(prepared.units)
    if progress:
        progress(0, total)
    start = time.perf_counter()
    measurements = []
    for done, unit in enumerate(prepared.units, 1):
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"cancelled after {done - 1} of {total} measurements")
        measurements.append(measure(prepared, unit))
        if progress:
            progress(done, total)
    measure_s = time.perf_counter() - start
    profile = assemble(prepared, measurements)
    profile.timings.measure_s = measure_s
    profile.timings.assemble_s = time.perf_counter() - start - measure_s
    return profile
