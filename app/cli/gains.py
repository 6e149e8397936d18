"""`peft-planner gains`: fill a Profile JSON file's gains, from the prior or from data (cheap signals, gradient proxy,
probes), and say what it cost against the fine-tuning run it plans for."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli import CliError, read_json
from profiler.gains.method_values import MAX_PROBES
from profiler.gains.registry import SOURCES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `gains` parser."""
    p = subparsers.add_parser("gains", help="estimate every candidate's gain in a profile JSON",
                              description="Fill a profile's gains: the documented prior, a cheap signal (scaled "
                              "by the prior or by --probes fine-tunes), a gradient proxy calibrated by probe "
                              "fine-tunes, or a probe fine-tune of every candidate, on the built-in task or your "
                              "model and data. Prints the run's cost_share: its example passes as a share of one "
                              "fine-tuning run of --steps x --batch.")
    p.add_argument("profile", help="a profile JSON (from `peft-planner profile`)")
    p.add_argument("--source", choices=list(SOURCES), default="gradient",
                   help="; ".join(f"{s.name}: {s.description}" for s in SOURCES.values()) + " (default gradient)")
    p.add_argument("--model", help="model directory (weights + tokenizer) for --data; default: the built-in task of "
                   "the profile's kind (MiniLM classification, or SmolLM2 for a causal_lm profile)")
    p.add_argument("--data", help="with --model: labelled data, .jsonl ({\"text\", \"label\"}) or .npz (x, y), for a "
                   "classification profile; .jsonl {\"prompt\", \"completion\"} or {\"text\"} for a causal_lm one")
    p.add_argument("--steps", type=int, default=120, help="probe fine-tune steps (default 120)")
    p.add_argument("--batch", type=int, default=16, help="probe batch size in examples (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="probe processes (default 1)")
    p.add_argument("--probes", type=int, default=0, help=f"bundles to probe (0 to {MAX_PROBES}: the top method, every "
                   "method together, the top method at its largest setting), for the sources that take a budget ("
                   + ", ".join(s.name for s in SOURCES.values() if s.probes) + "); default 0: scaled by the prior")
    p.add_argument("--report", help="also write the source's report JSON here (not for prior and probe)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Estimate the gains and write the profile; returns the exit status."""
    from pydantic import ValidationError

    from profiler.errors import ProfileError
    from profiler.gains.registry import fill_gains
    from profiler.schema import Profile
    from profiler.training.finetune import TrainConfig

    if (args.model is None) != (args.data is None):
        raise CliError("give --model and --data together, or neither (the built-in task)")
    if not SOURCES[args.source].needs_task and args.model and not args.probes:
        raise CliError(f"--source {args.source} uses no data")
    if not 0 <= args.probes <= MAX_PROBES or (args.probes and not SOURCES[args.source].probes):
        raise CliError(f"--probes takes 0 to {MAX_PROBES}, with a source that takes a probe budget, not {args.source}")
    if args.report and args.source in ("prior", "probe"):
        raise CliError(f"--source {args.source} writes no report: --report goes with the others")
    try:
        profile = Profile.model_validate(read_json(args.profile))
    except ValidationError as exc:
        raise CliError(f"{args.profile} is not a profile: {exc.errors()[0]['msg']}") from None
    task = None
    if SOURCES[args.source].needs_task or args.probes:
        from profiler.training.datasets import load_dataset
        from profiler.training.task import builtin_task, user_task

        kind = profile.task_kind
        try:
            task = builtin_task(kind) if args.model is None else user_task(args.model, load_dataset(args.data), kind=kind)
        except (ProfileError, ValidationError, OSError) as exc:
            raise CliError(str(exc).splitlines()[0]) from None
    config = TrainConfig(steps=args.steps, batch_size=args.batch, seed=args.seed)
    try:
        gained, report = fill_gains(profile, args.source, task, config, args.workers,
                                    progress=lambda message: print(message, file=sys.stderr), probes=args.probes)
    except (ProfileError, ValidationError, OSError) as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    cost = gained.gain_cost
    assert cost is not None
    print(f"{args.source} gains: {cost.wall_s:.1f} s, {cost.forward_examples:,} examples forward, "
          f"{cost.backward_examples:,} backward, {cost.probes} fine-tuning runs: cost_share {cost.cost_share:.3f} "
          f"of one {cost.run_steps}-step x {cost.run_batch_size} fine-tuning run", file=sys.stderr)
    if args.report and report is not None:
        Path(args.report).write_text(report.model_dump_json(indent=2) + "\n")
    text = gained.model_dump_json(indent=2)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text + "\n")
        print(f"wrote {args.source} gains of {len(gained.candidates)} candidates to {args.output}", file=sys.stderr)
    return 0
