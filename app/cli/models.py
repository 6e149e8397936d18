"""`peft-planner models prepare`: make a built-in model's weights available offline as a model directory."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from app.cli import CliError


def _smollm2(progress: Callable[[str], None] | None) -> Path:
    from profiler.models.smollm2 import smollm2_dir

    return smollm2_dir(progress)


PREPARERS = {"smollm2-135m": _smollm2}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` parser and its `prepare` subcommand."""
    p = subparsers.add_parser("models", help="prepare built-in models' real weights",
                              description="Built-in models with real weights, prepared once into the cache folder "
                              "($PEFT_PLANNER_CACHE/models, default ~/.cache/peft-planner/models).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    prepare = actions.add_parser("prepare", help="prepare a model directory and print its path",
                                 description="Prepare a model directory (config.json, model.safetensors, tokenizer) "
                                 "unless it is already there, and print its path; progress goes to stderr.")
    prepare.add_argument("model", metavar="MODEL", choices=sorted(PREPARERS),
                         help=f"one of: {', '.join(sorted(PREPARERS))}")
    prepare.add_argument("--no-progress", action="store_true", help="hide the progress messages and bars")
    prepare.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prepare `args.model`; prints the directory's path on stdout. Exit 0."""
    from profiler.errors import ProfileError

    if args.no_progress:
        os.environ["TQDM_DISABLE"] = "1"  # transformers' GGUF conversion bar is a plain tqdm

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        path = PREPARERS[args.model](None if args.no_progress else progress)
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    print(path)
    return 0
