"""`peft-planner serve`: run the HTTP service with uvicorn."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser(
        "serve", help="run the HTTP service",
        description="Serve the planning API (settings also from PEFT_PLANNER_* variables).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--db", help="SQLite file or database URL (default $PEFT_PLANNER_DB)")
    parser.add_argument("--workers", type=int, help="job worker processes")
    parser.add_argument("--models-root", help="directory model paths must lie under")
    parser.add_argument("--log-level", default="info")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start uvicorn on the app; returns when the server stops."""
    import uvicorn

    from app.main import create_app
    from app.settings import Settings

    overrides = {
        key: value
        for key, value in (("db", args.db), ("workers", args.workers),
                           ("models_root", args.models_root))
        if value is not None
    }
    settings = Settings(**overrides)
    app = create_app(settings)
    print(f"peft-planner serving on http://{args.host}:{args.port} "
          f"(docs: http://{args.host}:{args.port}/docs, database: {settings.db})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
