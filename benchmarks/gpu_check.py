"""The GPU check: the CUDA path measured, and the roofline predictions compared with it (one command, < 8 min).

    python -m benchmarks.gpu_check [--device cuda|cpu] [--target h200]      (from the repository root)

1. Memory: for BERT-base and SmolLM2-135M shapes and three plans each (`benchmarks.memory`), the predicted
   training memory against `torch.cuda.max_memory_allocated` over real training steps (bf16, batch 8 x 256).
2. Step time: the profile's prediction of a plan's training step (every layer's forward, the reached layers'
   backward, each candidate's added step time) against the measured step.
3. Roofline: the same models profiled for `--target` (nothing timed) against the layer times measured on this
   GPU, and a large bf16 GEMM timed with CUDA events against its roofline time.
`--device cpu` runs the same script on the CPU (float32, small shapes; no CUDA peak; the roofline compared with
CPU timings means nothing and is printed as such). Writes benchmarks/results/cuda.json (cuda-cpu.json on CPU).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.memory import MODELS, SHAPES, measure, plans
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.accounting import plan_memory
from profiler.devices import device_named
from profiler.measure.roofline import predicted_ms

ROOT = Path(__file__).resolve().parents[1]


def gemm_check(device: str, target: str, n: int) -> dict:
    """A bf16 (CPU: float32) n x n x n GEMM: median measured ms (CUDA events, or perf_counter) and roofline ms."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    times = []
    for _ in range(12):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            a @ b
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            a @ b
            times.append((time.perf_counter() - t0) * 1e3)
    measured = sorted(times[2:])[len(times[2:]) // 2]
    meta = (torch.empty(n, n, device="meta", dtype=dtype) for _ in range(2))
    x, y = meta
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "measured_ms": measured,
            "roofline_ms": predicted_ms(lambda: x @ y, device_named(target))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--target", default="h200", help="the table's name of this GPU (default h200)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --device cpu")
    started = time.perf_counter()
    shape = SHAPES[args.device]
    result: dict = {"device": args.device, "target": args.target, "shape": shape, "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None, "models": []}
    for name, (q, v) in MODELS.items():
        options = ProfileOptions(methods=["lora", "norm_affine", "bitfit"], ranks=[4, 8, 16], device=args.device,
                                 repeats=5, **shape)
        measured = profile_model(ModelSpec(name=name), options)
        predicted = profile_model(ModelSpec(name=name), options.model_copy(update={"target_device": args.target}))
        model = {"model": name, "plans": [], "layers": []}
        for layer, roof in zip(measured.layers[:3], predicted.layers[:3], strict=True):
            model["layers"].append({"path": layer.path, "forward_ms": layer.forward_ms, "roofline_forward_ms":
                                    roof.forward_ms, "backward_ms": layer.backward_ms,
                                    "roofline_backward_ms": roof.backward_ms})
        by_id = {c.id: c for c in measured.candidates}
        for label, plan in plans(measured, q, v).items():
            parts = plan_memory(measured, plan)
            used, step_ms = measure(name, plan, measured, args.device)
            first = min(by_id[c].layer for c in plan if by_id[c].layer is not None)
            step_pred = (sum(la.forward_ms for la in measured.layers)
                         + sum(la.backward_ms for la in measured.layers if la.index >= first)
                         + sum(by_id[c].train_step_ms for c in plan))
            model["plans"].append({"plan": label, "candidates": len(plan),
                                   "predicted_total_bytes": sum(parts.model_dump().values()) - parts.overhead,
                                   "measured_peak_bytes": used["peak"], "predicted_activations": parts.activations,
                                   "measured_activations": used["activations"], "predicted_step_ms": step_pred,
                                   "measured_step_ms": step_ms})
        result["models"].append(model)
    result["gemm"] = gemm_check(args.device, args.target, 8192 if args.device == "cuda" else 1024)
    result["wall_s"] = time.perf_counter() - started
    for model in result["models"]:
        for p in model["plans"]:
            peak = p["measured_peak_bytes"]
            memory = "-" if peak is None else f"{100 * (p['predicted_total_bytes'] / peak - 1):+.1f} %"
            print(f"{model['model']:13} {p['plan']:28} memory {p['predicted_total_bytes'] / 2**30:6.2f} GiB "
                  f"vs peak {memory:>8}; step {p['predicted_step_ms']:8.1f} ms pred, {p['measured_step_ms']:8.1f} meas")
        for la in model["layers"]:
            print(f"{model['model']:13} {la['path']:28} forward {la['forward_ms']:.3f} ms, roofline "
                  f"{la['roofline_forward_ms']:.3f}; backward {la['backward_ms']:.3f}, roofline "
                  f"{la['roofline_backward_ms']:.3f}")
    gemm = result["gemm"]
    print(f"GEMM {gemm['n']}^3 {gemm['dtype']}: {gemm['measured_ms']:.3f} ms measured, {gemm['roofline_ms']:.3f} ms "
          f"roofline ({args.target}){'' if args.device == 'cuda' else ' — CPU times: the roofline is for the GPU'}")
    print(f"wall {result['wall_s']:.0f} s")
    out = ROOT / f"benchmarks/results/cuda{'' if args.device == 'cuda' else '-cpu'}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
