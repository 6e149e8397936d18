"""A worker process: claims queued jobs from the job table and runs them.

Started by the local runner as `python -m app.jobs.worker`; it writes the job it runs to its state
file. It stops between jobs on SIGTERM/SIGINT, and exits at once, even inside a job, when its parent
(the service) is gone; the service re-queues the abandoned job on its next start.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from app.jobs.execute import run_job
from app.settings import Settings
from app.store import create_store_engine, jobs

log = logging.getLogger("app.jobs.worker")


def main(argv: list[str] | None = None) -> int:
    """Run the worker loop until told to stop."""
    parser = argparse.ArgumentParser(prog="python -m app.jobs.worker")
    parser.add_argument("--db", required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--instance", required=True, help="the service instance the worker's claims belong to")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--settings", required=True, help="the service's settings, as JSON")
    parser.add_argument("--state-file", required=True, help="where to write the job being run (for the monitor)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    settings = Settings.model_validate_json(args.settings)
    engine = create_store_engine(args.db)
    stop = threading.Event()
    state = Path(args.state_file)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def should_stop() -> bool:
        return stop.is_set() or os.getppid() != args.parent_pid

    def orphan_watch() -> None:
        """Exit at once when the service is gone, even inside a job: the next service start re-queues it."""
        while not stop.wait(1.0):
            if os.getppid() != args.parent_pid:
                log.warning("the service (pid %d) is gone; exiting", args.parent_pid)
                os._exit(3)

    threading.Thread(target=orphan_watch, name="orphan-watch", daemon=True).start()
    log.info("%s taking jobs", args.worker_id)

    while not should_stop():
        job = jobs.claim_next(engine, args.worker_id, args.instance)
        if job is None:
            stop.wait(settings.worker_poll_s)
            continue
        log.info("running job %s", job.id)
        state.write_text(json.dumps({"job": job.id, "since": time.time()}))
        run_job(engine, job, args.worker_id, settings, should_stop)
        state.write_text("{}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
