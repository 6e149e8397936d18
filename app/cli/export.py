"""`peft-planner export`: write a plan as Hugging Face peft configs (save_pretrained folders)."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli import CliError, read_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` parser."""
    p = subparsers.add_parser(
        "export",
        help="write a plan as peft configs",
        description="Write the peft configs of a plan (LoRA with rank/alpha patterns, LayerNorm tuning, prompt "
                    "tuning) with save_pretrained, and list the selected candidates peft cannot express.",
    )
    p.add_argument("plan", metavar="PLAN", help="plan JSON (from `peft-planner plan` or GET /v1/plans/{id}), or -")
    p.add_argument("-o", "--out", metavar="DIR", required=True, help="folder for adapter_config.json")
    p.add_argument("--token-dim", type=int, metavar="D", help="embedding width (needed for prompt tuning)")
    p.add_argument("--profile", metavar="FILE", help="the profile the plan was made from: the summary of what is "
                   "left out then counts its parameters, and a causal_lm profile's configs say task_type CAUSAL_LM")
    p.add_argument("--allow-partial", action="store_true",
                   help="write the configs even when peft cannot express part of the plan (default: refuse, exit 2)")
    p.set_defaults(func=run)


def _selected(path: str) -> list[str]:
    data = read_json(path)
    plan = data.get("plan", data) if isinstance(data, dict) else None
    selected = plan.get("selected") if isinstance(plan, dict) else None
    if not isinstance(selected, list) or not all(isinstance(i, str) for i in selected):
        raise CliError(f"{path} has no plan with a `selected` list of candidate ids")
    if not selected:
        raise CliError(f"the plan in {path} selects nothing: there is nothing to export")
    return selected


def run(args: argparse.Namespace) -> int:
    """Export; prints what was written and what was left out (on stderr). Exit 0 when something was written."""
    from profiler.errors import ProfileError
    from profiler.methods.export import export_plan, save_export, task_type
    from profiler.schema import Profile

    profile = None if args.profile is None else Profile.model_validate(read_json(args.profile))
    try:
        export = export_plan(_selected(args.plan), args.token_dim,
                             None if profile is None else task_type(profile.task_kind))
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    params = None
    if profile is not None:
        params = {c.id: c.params for c in profile.candidates}
        if any(u.id not in params for u in export.unsupported):
            raise CliError(f"{args.profile} is not the profile of this plan: it lacks some of its candidates")
    if not export.configs:
        raise CliError(f"{export.summary(params)}; nothing fits peft's vocabulary")
    if not export.complete:
        if not args.allow_partial:
            raise CliError(f"{export.summary(params)}; --allow-partial writes the rest, or plan with --exportable peft")
        print(f"warning: {export.summary(params)}", file=sys.stderr)
    try:
        folders = save_export(export, args.out)
    except ImportError:
        raise CliError("writing peft configs needs `pip install peft`") from None
    print(json.dumps({"written": [str(f) for f in folders], "exported": export.exported,
                      "unsupported": [u.model_dump() for u in export.unsupported]}, indent=2))
    return 0
