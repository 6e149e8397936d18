"""`peft-planner profile`: measure every candidate of a model and write the Profile JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli import CliError, read_json
from profiler.devices import DEVICES, resolve_device_spec
from profiler.schema import ProfileOptions


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _default(name: str) -> str:
    """ProfileOptions' default of a field, as the help shows it."""
    field = ProfileOptions.model_fields[name]
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `profile` parser."""
    p = subparsers.add_parser("profile", help="measure what each adapter candidate costs on a model",
                              description="Profile params, FLOPs, latency and memory of every adapter candidate "
                              "and the model's fixed training memory. Run `--list-models` for the catalog.")
    p.add_argument("--model", help="catalog name, a transformers config JSON file, or a model directory")
    p.add_argument("--list-models", action="store_true", help="list the built-in models and exit")
    p.add_argument("--methods", type=_names, help=f"comma-separated methods (default {_default('methods')}; "
                   "ia3 is opt-in)")
    p.add_argument("--ranks", type=_ints, help=f"LoRA ranks (default {_default('ranks')})")
    p.add_argument("--bottlenecks", type=_ints, help=f"adapter bottleneck sizes (default {_default('bottlenecks')})")
    p.add_argument("--prompt-lengths", type=_ints, help=f"prompt-tuning lengths (default {_default('prompt_lengths')})")
    p.add_argument("--target-modules", type=_names, help="comma-separated module names or regexes restricting sites "
                   "(default: every site)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per example (default 128)")
    p.add_argument("--task", choices=["auto", "causal_lm", "classification"], default="auto",
                   help="what the model is trained for: causal_lm profiles the ForCausalLM class (default auto: "
                   "causal_lm for decoders)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to measure (default auto)")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                   help="dtype of the frozen weights (default auto: the config's torch_dtype, else float32)")
    p.add_argument("--quantization", choices=["none", "int8", "nf4"], default="none",
                   help="frozen linear weights stored 8-bit or 4-bit, QLoRA-style (memory only; default none)")
    p.add_argument("--checkpointing", action="store_true", help="gradient checkpointing per layer (default off)")
    p.add_argument("--target-device", metavar="NAME|FILE.json",
                   help="plan for this GPU: nothing is timed here, latencies are roofline predictions for it "
                   "(names: " + ", ".join(DEVICES) + "; or a JSON file of its figures, as GET /v1/devices shows)")
    p.add_argument("--timing", choices=["measure", "none"], default="measure",
                   help="none: time nothing, measure shapes on the meta device (fast for large models; default "
                   "measure)")
    p.add_argument("--repeats", type=int, help=f"timed repeats per measurement (default {_default('repeats')})")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--allow-defaults", action="store_true",
                   help="profile a config that leaves shape keys to transformers' defaults (default: refuse)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _spec(model: str) -> dict[str, object]:
    """A catalog name, a config JSON file or a model directory; CliError for a path that is not there."""
    path = Path(model)
    if path.is_dir():
        return {"path": str(path)}
    if path.suffix == ".json" or path.is_file():
        return {"config": read_json(model)}
    if "/" in model or model.startswith("."):
        raise CliError(f"no such directory or file: {model}")
    return {"name": model}


def run(args: argparse.Namespace) -> int:
    """Profile and write the JSON; returns the exit status."""
    from pydantic import ValidationError

    from profiler import ModelSpec, ProfileError, list_models

    if args.list_models:
        for entry in list_models():
            print(f"{entry.name:14} {entry.family:8} {entry.params:>15,}  {entry.description}")
        return 0
    if args.model is None:
        raise CliError("give --model (a catalog name, a config JSON file or a model directory), or --list-models")
    fields = {"methods": args.methods, "ranks": args.ranks, "bottlenecks": args.bottlenecks,
              "prompt_lengths": args.prompt_lengths, "target_modules": args.target_modules, "repeats": args.repeats,
              "threads": args.threads}
    try:
        spec = ModelSpec.model_validate(_spec(args.model))
        options = ProfileOptions(batch_size=args.batch, seq_len=args.seq_len, device=args.device, dtype=args.dtype,
                                 task=args.task, quantization=args.quantization, checkpointing=args.checkpointing,
                                 timing=args.timing, allow_defaults=args.allow_defaults,
                                 target_device=None if args.target_device is None else
                                 resolve_device_spec(args.target_device),
                                 **{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise CliError(f"{'.'.join(str(x) for x in err['loc']) or 'input'}: {err['msg']}") from None
    except ProfileError as exc:
        raise CliError(str(exc)) from None

    from tqdm import tqdm

    from profiler import profile_model

    bars: list[tqdm] = []  # made once measuring starts: a model refused while preparing prints no bar

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc="profiling", unit="unit", total=total, file=sys.stderr, disable=args.no_progress))
        bars[0].n = done
        bars[0].refresh()

    try:
        profile = profile_model(spec, options, progress=progress)
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    finally:
        for bar in bars:
            bar.close()
    text = profile.model_dump_json(indent=2)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text + "\n")
        print(f"wrote {len(profile.candidates)} candidates, {len(profile.layers)} layers to {args.output}",
              file=sys.stderr)
    return 0
