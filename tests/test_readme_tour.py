"""The README's five-minute tour, run as written in bash from (a mirror of) the repository root.

The block runs in a temporary folder whose entries link to the repository root's, so what it writes
(profile.json, plans, adapter/) stays out of the checkout; `.venv` is the repository's own when
`make` made it, else a stand-in that puts this interpreter first on PATH.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.slow


def tour_block() -> str:
    """The shell block of the README's tour section."""
    match = re.search(r"## A five-minute tour\n.*?```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert match is not None, "no tour block in README.md"
    return match.group(1)


def mirror_root(folder: Path) -> None:
    """Link every top-level entry of the repository into `folder`, with a `.venv` that activates."""
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv"):
            (folder / entry.name).symlink_to(entry)
    venv = ROOT / ".venv"
    if (venv / "bin" / "activate").is_file() and Path(sys.prefix).resolve() == venv.resolve():
        (folder / ".venv").symlink_to(venv)
    else:
        (folder / ".venv" / "bin").mkdir(parents=True)
        (folder / ".venv" / "bin" / "activate").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')


def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    mirror_root(tmp_path)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", tour_block()], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("status optimal") >= 2, done.stdout
    plan = json.loads((tmp_path / "plan.json").read_text())
    profile = json.loads((tmp_path / "profile.json").read_text())
    assert plan["status"] == "optimal" and 0 < plan["params"] <= 0.005 * profile["model"]["total_params"]
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["modules_to_save"]
    assert "status optimal, gain 2.5" in done.stdout  # examples/solve_problem.py
