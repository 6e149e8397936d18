"""Benchmark: predicted training memory of real plans against what a real training step uses.

    python -m benchmarks.memory [--device cpu|cuda] [--out benchmarks/results/memory.json]

For BERT-base and SmolLM2-135M shapes (random weights) and three plans each (LoRA r16 on q and v; LoRA r8 on
every linear; mixed ranks with norms and BitFit), the profile's account (`plan_memory`) is compared with a
real model carrying the plan: on the CPU, the bytes autograd saves in one forward and backward (activations)
and what AdamW keeps (trainable state); on CUDA, `torch.cuda.max_memory_allocated` over real training steps
against the predicted total without the CUDA overhead (the allocator does not see the context). Prints a table
and writes the results file.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from profiler import ModelSpec, Profile, ProfileOptions, profile_model
from profiler.accounting import plan_memory
from profiler.methods.apply import apply_plan
from profiler.models.build import build

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"cpu": {"batch_size": 2, "seq_len": 64, "dtype": "float32"},
          "cuda": {"batch_size": 8, "seq_len": 256, "dtype": "bfloat16"}}
MODELS = {"bert-base": ("query", "value"), "smollm2-135m": ("q_proj", "v_proj")}


@dataclass
class Row:
    """One plan on one model: predicted parts and what was measured, bytes."""

    model: str
    plan: str
    candidates: int
    predicted_activations: float
    predicted_state: float
    predicted_total: float
    measured_activations: float | None
    measured_state: float | None
    measured_peak: float | None
    step_ms: float


def plans(profile: Profile, q: str, v: str) -> dict[str, list[str]]:
    """Three plan shapes of a profile's candidates inside layers."""
    lora = [c for c in profile.candidates if c.method == "lora" and c.layer is not None and "lm_head" not in c.site]

    def pick(names: tuple[str, ...] | None, rank: Callable[[int], int]) -> list[str]:
        return [c.id for c in lora if (names is None or c.site.rsplit(".", 1)[-1] in names)
                and c.config["rank"] == rank(c.layer or 0)]

    extras = [c.id for c in profile.candidates if c.method in ("norm_affine", "bitfit") and c.layer is not None]
    return {"LoRA r16 q,v": pick((q, v), lambda layer: 16),
            "LoRA r8 every linear": pick(None, lambda layer: 8),
            "mixed ranks, norms, BitFit": pick(None, lambda layer: 16 if layer % 3 == 0 else 4) + extras}


def _loss(model: torch.nn.Module, ids: torch.Tensor, causal: bool) -> torch.Tensor:
    """The task's loss: next-token cross-entropy, or a mean-pooled linear readout's cross-entropy."""
    if causal:
        logits = model(input_ids=ids).logits
        return F.cross_entropy(logits[:, :-1].float().flatten(0, 1), ids[:, 1:].flatten())
    hidden = model(input_ids=ids).last_hidden_state
    return hidden.float().mean(1).sum()


def measure(name: str, plan: list[str], profile: Profile, device: str) -> tuple[dict, float]:
    """What a real model carrying `plan` uses (bytes by part), and one training step's time in ms."""
    dtype = getattr(torch, profile.dtype)
    torch.manual_seed(0)
    model = build(ModelSpec(name=name), device).model.to(dtype)
    causal = profile.model.task == "causal_lm"
    batch, tokens = profile.batch_size, profile.seq_len
    ids = torch.arange(batch * tokens, device=device).remainder(model.config.vocab_size).view(batch, tokens)
    applied = apply_plan(model, plan, {"input_ids": ids[:, :8]})
    optimizer = torch.optim.AdamW(applied.parameters(), lr=1e-4)
    out: dict = {"activations": None, "state": None, "peak": None}
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    if device == "cpu":
        saved: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            if t.untyped_storage().data_ptr() not in params:
                saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        body = getattr(model, "model", model)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            hidden = body(input_ids=ids).last_hidden_state
        hidden.backward(torch.ones_like(hidden))
        out["activations"] = float(sum(saved.values()))
    start = time.perf_counter()
    steps = 3
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        _loss(model, ids, causal).backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
        out["peak"] = float(torch.cuda.max_memory_allocated())
    step_ms = (time.perf_counter() - start) * 1e3 / steps
    created = {id(q) for a in applied.attachments.values() if a.created for q in a.parameters()}
    out["state"] = float(sum(
        (p.numel() * p.element_size() if id(p) in created else 0) + p.grad.numel() * p.grad.element_size()
        + sum(optimizer.state[p][k].numel() * optimizer.state[p][k].element_size() for k in ("exp_avg", "exp_avg_sq"))
        for p in applied.parameters()))
    return out, step_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    shape = SHAPES[args.device]
    rows = []
    for name, (q, v) in MODELS.items():
        options = ProfileOptions(methods=["lora", "norm_affine", "bitfit"], ranks=[4, 8, 16], device=args.device,
                                 timing="none" if args.device == "cpu" else "measure", repeats=3, **shape)
        profile = profile_model(ModelSpec(name=name), options)
        for label, plan in plans(profile, q, v).items():
            parts = plan_memory(profile, plan)
            measured, step_ms = measure(name, plan, profile, args.device)
            rows.append(Row(name, label, len(plan), parts.activations,
                            parts.trainable_state - profile.memory.fixed.trainable_state,
                            sum(parts.model_dump().values()) - parts.overhead,
                            measured["activations"], measured["state"], measured["peak"], round(step_ms, 1)))

    def pct(pred: float, meas: float | None) -> str:
        return "-" if meas is None else f"{100 * (pred / meas - 1):+.2f} %"

    print(f"{'model':13} {'plan':28} {'n':>4} {'activations pred/meas':>26} {'state pred/meas':>18} "
          f"{'total pred/peak':>20}")
    for r in rows:
        print(f"{r.model:13} {r.plan:28} {r.candidates:4} {r.predicted_activations / 2**20:9.1f} MiB "
              f"{pct(r.predicted_activations, r.measured_activations):>12} {r.predicted_state / 2**20:8.2f} MiB "
              f"{pct(r.predicted_state, r.measured_state):>9} {r.predicted_total / 2**30:8.2f} GiB "
              f"{pct(r.predicted_total, r.measured_peak):>10}")
    out = Path(args.out or ROOT / f"benchmarks/results/memory-{args.device}.json")
    out.write_text(json.dumps({"device": args.device, "shape": shape, "rows": [asdict(r) for r in rows]}, indent=2)
                   + "\n")


if __name__ == "__main__":
    main()
