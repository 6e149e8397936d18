"""The `peft-planner` command line: one module per subcommand, imported lazily."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app import __version__

# Each module defines `register(subparsers)`, which adds its parser and sets
# `func(args) -> int` as the parser's default. Modules are imported only when
# their command runs, so `plan` never pays for torch.
SUBCOMMANDS = {
    "plan": "app.cli.plan",
    "profile": "app.cli.profile",
    "serve": "app.cli.serve",
    "export": "app.cli.export",
    "gains": "app.cli.gains",
    "report": "app.cli.report",
    "models": "app.cli.models",
}


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def read_json(path: str) -> Any:
    """The strict JSON (`profiler.jsontext`) in file `path`, or stdin for "-"; CliError saying why not."""
    from profiler.jsontext import JsonTextError, loads

    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return loads(data)
    except JsonTextError as exc:
        where = ".".join(str(part) for part in exc.loc[:8])
        raise CliError(f"{path}: {where + ': ' if where else ''}{exc}") from None


def describe(exc: ValidationError, what: str = "problem") -> str:
    """Return a one-line summary of a validation error (of an invalid `what`), naming the first bad field."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"]) or what
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid {what}: {loc}: {first['msg']}{more}"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the top-level parser; with `only`, register just that subcommand."""
    parser = argparse.ArgumentParser(
        prog="peft-planner",
        description="Plan parameter-efficient fine-tuning within a budget.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=f"see `peft-planner {name} --help`")
            continue
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            sub.add_parser(name, help="(not available in this build)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.error(f"`{args.command}` is not available in this build")
    try:
        return int(func(args) or 0)
    except CliError as exc:
        print(f"peft-planner {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
