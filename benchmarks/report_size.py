"""Plan report size and render time: the HTML report of LLaMA-shaped plans, rendered in headless Chromium.

    python -m benchmarks.report_size [--sizes 200,1200,3000] [--repeats 5]

(Run from the repository root as a module: it drives Chromium with `tests/browser.py`.) For each size of
`solver.examples.llama_like_problem` it solves the plan, builds its report as the service does (frontier capped
at the report's points and seconds) and records the page's size and build time; then it opens the page from a
file:// URL in headless Chromium `--repeats` times and records the median time from navigation start to the
load event and to the second animation frame after the load (the page laid out and painted). Needs `chromium`, `chromium-driver` and selenium (`make test-slow` installs them); without them
it records the sizes only. Results go to benchmarks/results/report_size.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from app.planning.report import plan_report, report_frontier
from solver import solve
from solver.examples import llama_like_problem
from tests.browser import browser_missing, chromium

RESULTS = Path(__file__).resolve().parent / "results" / "report_size.json"
LIMIT_KB, LIMIT_MS = 300, 1000
# Resolves once the page has had two animation frames after its load event: laid out and painted.
PAINTED = """
const done = arguments[arguments.length - 1];
const finish = () => requestAnimationFrame(() => requestAnimationFrame(() => {
  done([performance.getEntriesByType("navigation")[0].loadEventEnd, performance.now()]);
}));
document.readyState === "complete" ? finish() : addEventListener("load", finish);
"""


def build(size: int) -> dict:
    """Solve the problem of `size`, build its report; the page and its figures."""
    problem = llama_like_problem(size)
    plan = solve(problem)
    start = time.perf_counter()
    front = report_frontier(problem)
    frontier_s = time.perf_counter() - start
    start = time.perf_counter()
    html = plan_report(plan, problem, front, plan_id=f"llama-{size}", source={"gains": {"problem": len(problem.candidates)}})
    return {"size": size, "candidates": len(problem.candidates), "selected": len(plan.selected),
            "frontier_points": 0 if isinstance(front, str) else len(front.points), "frontier_s": round(frontier_s, 2),
            "build_ms": round((time.perf_counter() - start) * 1e3, 1), "kb": round(len(html.encode()) / 1024, 1),
            "html": html}


def render(rows: list[dict], repeats: int) -> None:
    """Add the median load and painted times (ms) of each row's page in headless Chromium."""
    with tempfile.TemporaryDirectory() as folder, chromium() as browser:
        browser.set_script_timeout(30)
        for row in rows:
            page = Path(folder) / f"report-{row['size']}.html"
            page.write_text(row["html"], encoding="utf-8")
            runs = []
            for _ in range(repeats):
                browser.get("about:blank")
                browser.get(page.as_uri())
                runs.append(browser.execute_async_script(PAINTED))
            for i, key in enumerate(("load_ms", "painted_ms")):
                row[key] = round(statistics.median(r[i] for r in runs), 1)


def browser_version() -> str:
    """The Chromium build the times were measured in."""
    done = subprocess.run([shutil.which("chromium") or "chromium", "--version"], capture_output=True, text=True)
    return done.stdout.strip() or "chromium"


def main() -> None:
    """Measure, print the table, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="200,1200,3000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = [build(int(s)) for s in args.sizes.split(",")]
    missing = browser_missing()
    if missing is None:
        render(rows, args.repeats)
    header = (f"{'size':>5} {'cands':>6} {'selected':>8} {'frontier pts':>12} {'KB':>7} {'build ms':>9} "
              f"{'load ms':>8} {'painted ms':>10}")
    print(header)
    for r in rows:
        load, painted = (f"{r[k]:.1f}" if k in r else "-" for k in ("load_ms", "painted_ms"))
        print(f"{r['size']:>5} {r['candidates']:>6} {r['selected']:>8} {r['frontier_points']:>12} {r['kb']:>7.1f} "
              f"{r['build_ms']:>9.1f} {load:>8} {painted:>10}")
    if missing is not None:
        print(f"render times not measured: {missing}")
    for r in rows:
        del r["html"]
    largest = max(rows, key=lambda r: r["candidates"])
    verdict = {"under_300_kb": largest["kb"] < LIMIT_KB,
               "painted_under_1_s": None if largest.get("painted_ms") is None else largest["painted_ms"] < LIMIT_MS}
    print(f"largest ({largest['candidates']} candidates): {largest['kb']:.1f} KB (limit {LIMIT_KB}), "
          f"painted in {largest.get('painted_ms', '-')} ms (limit {LIMIT_MS})")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "command": f"python -m benchmarks.report_size --sizes {args.sizes} --repeats {args.repeats}",
        "cpus": os.cpu_count(), "python": platform.python_version(), "browser": missing or browser_version(),
        "rows": rows, "verdict": verdict}, indent=2) + "\n")


if __name__ == "__main__":
    main()
