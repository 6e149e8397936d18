"""Wall-clock timing of small callables: CUDA events on GPU, perf_counter on CPU; interleaved repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Timing:
    """Median and interquartile range of repeated measurements, in milliseconds."""

    median_ms: float
    spread_ms: float


def summarize(samples: Sequence[float]) -> Timing:
    """Median and IQR (ms) of samples in ms; zero for no samples (an untimed measurement)."""
    if not samples:
        return Timing(0.0, 0.0)
    if len(samples) < 2:
        return Timing(float(samples[0]), 0.0)
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return Timing(statistics.median(samples), q[2] - q[0])


def difference(cand: Sequence[float], base: Sequence[float]) -> Timing:
    """Median and IQR (ms) of paired differences cand[i] - base[i]."""
    return summarize([c - b for c, b in zip(cand, base, strict=True)])


def _time_once(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return float(start.elapsed_time(end))
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def interleaved(fns: Sequence[Callable[[], object]], device: torch.device, repeats: int, warmup: int) -> list[list[float]]:
    """Time each fn `repeats` times (ms), round-robin so drift hits all alike, after `warmup` untimed rounds."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            samples[i].append(_time_once(fn, device))
    return samples
