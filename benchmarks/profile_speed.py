"""Benchmark: profile every bert-base candidate on the CPU vs whole-model forward passes and the naive approach.

    python benchmarks/profile_speed.py [--threads 2] [--batch 8] [--seq-len 128] [--naive-sample 6]

Writes benchmarks/results/profile_speed.json and benchmarks/results/profile_speed.md (a docs/benchmarks.md section).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.measure.flops import MAC_OPS, dispatch_counter, forward_flops
from profiler.measure.isolated import materialize_module
from profiler.measure.trace import record
from profiler.methods import attach
from profiler.models.build import build
from profiler.sites import (
    find_layers,
    find_sites,
)

RESULTS = Path(__file__).parent / "results"


def _real_bert(batch: int, seq: int) -> tuple[torch.nn.Module, dict]:
    built = build(ModelSpec(name="bert-base"), "meta")
    model = materialize_module(built.model, torch.device("cpu"), torch.float32, 0)
    _, kwargs = built.inputs(batch, seq, torch.device("cpu"))
    return model, kwargs


def _forward_s(model: torch.nn.Module, kwargs: dict, repeats: int = 3) -> float:
    with torch.no_grad():
        model(**kwargs)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(**kwargs)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--naive-sample", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    options = ProfileOptions(ranks=[4, 8, 16, 32], batch_size=args.batch, seq_len=args.seq_len, device="cpu",
                             threads=args.threads)
    model, kwargs = _real_bert(args.batch, args.seq_len)
    forward_before = _forward_s(model, kwargs)

    t0 = time.perf_counter()
    profile = profile_model(ModelSpec(name="bert-base"), options)
    profile_s = time.perf_counter() - t0
    forward_after = _forward_s(model, kwargs)
    forward = statistics.median([forward_before, forward_after])

    # Naive: one fvcore trace of the whole model per candidate, on a sample of candidates.
    sites = {(s.path, s.kind): s for s in find_sites(model, find_layers(model), record(model, (), kwargs))}
    kinds = {"lora": "linear", "adapter": "adapter", "bitfit": "bias", "norm_affine": "norm", "prompt_tuning": "embedding"}
    step = max(1, len(profile.candidates) // args.naive_sample)
    sample = profile.candidates[::step][: args.naive_sample]
    base_flops = forward_flops(model, (), kwargs).total
    naive_times, agreement = [], []
    for c in sample:
        setting = next(iter(c.config.values())) if c.config and c.method != "bitfit" else None
        att = attach(model, sites[(c.site, kinds[c.method])], c.method, setting)
        t1 = time.perf_counter()
        whole = forward_flops(model, (), kwargs).total - base_flops
        naive_times.append(time.perf_counter() - t1)
        att.detach()
        agreement.append({"id": c.id, "isolated": c.inference_flops, "whole_model": whole,
                          "rel_diff": abs(c.inference_flops - whole) / max(whole, 1.0)})
    naive_s = statistics.mean(naive_times) * len(profile.candidates)

    count = forward_flops(model, (), kwargs)
    gemm = sum(v for op, v in count.by_op.items() if f"aten::{op}" in MAC_OPS)
    with torch.no_grad(), dispatch_counter(elementwise=False) as ref:
        model(**kwargs)
    result = {
        "model": "bert-base", "batch": args.batch, "seq_len": args.seq_len, "threads": args.threads,
        "torch": torch.__version__, "candidates": len(profile.candidates), "units": profile.timings.num_units,
        "profile_s": round(profile_s, 2), "prepare_s": round(profile.timings.prepare_s, 2),
        "measure_s": round(profile.timings.measure_s, 2), "forward_s": round(forward, 3),
        "profile_over_forward": round(profile_s / forward, 1),
        "naive_s_extrapolated": round(naive_s, 1), "naive_s_per_candidate": round(statistics.mean(naive_times), 3),
        "naive_over_profile": round(naive_s / profile_s, 1),
        "fvcore_gemm_flops": gemm, "flop_counter_mode_flops": ref.get_total_flops(),
        "fvcore_total_flops": count.total, "uncounted_ops": count.uncounted,
        "isolated_vs_whole_model": agreement,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    worst = max(a["rel_diff"] for a in agreement)
    (RESULTS / "profile_speed.md").write_text(f"""## Profiler

`python benchmarks/profile_speed.py --threads {args.threads}` on the CPU ({args.threads} threads, torch {torch.__version__}):
profiling every candidate of bert-base at batch {args.batch} x {args.seq_len} tokens (every linear with LoRA
ranks 4/8/16/32, adapters b16/b64 after attention and MLP, BitFit, norm affines, prompts m10/m20).

| what | value |
|---|---|
| candidates / measurement units | {len(profile.candidates)} / {profile.timings.num_units} |
| whole-model forward pass | {forward:.2f} s |
| profiling all candidates | {profile_s:.1f} s = **{profile_s / forward:.1f} forward passes** |
| naive: one whole-model fvcore trace per candidate (extrapolated from {len(sample)}) | {naive_s:.0f} s ({naive_s / profile_s:.0f}x slower) |
| forward GEMM FLOPs, fvcore x 2 vs FlopCounterMode | {gemm:.4g} vs {ref.get_total_flops():.4g} |
| isolated vs whole-model forward FLOPs added, worst of {len(sample)} | {100 * worst:.3f} % |

Candidates that share method, setting, module shape, input shape, dtype and device are one measurement, so
the {len(profile.candidates)} candidates cost {profile.timings.num_units} isolated micro-benchmarks on the
shapes recorded from one traced forward pass.
""")
    print(json.dumps({k: v for k, v in result.items() if k != "isolated_vs_whole_model"}, indent=2))


if __name__ == "__main__":
    main()
