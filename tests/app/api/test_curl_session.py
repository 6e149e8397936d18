"""The curl session of docs/service.md, replayed as written.

The session's shell block runs in bash, unchanged except for its URL and
model (`bert-tiny` instead of `bert-base`, so that profiling takes seconds),
against a real `peft-planner serve` started as `make run` starts it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ROOT, serving

SESSION_PAGE = ROOT / "docs" / "service.md"
DOCUMENTED_URL = "URL=http://127.0.0.1:8000\n"
DOCUMENTED_MODEL = '"name": "bert-base"'

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("curl") is None or shutil.which("jq") is None, reason="needs curl and jq"
    ),
]


def session_script(url: str, model: str) -> str:
    """The documented session, pointed at `url` and profiling `model`."""
    match = re.search(r"A session .*?```sh\n(.*?)```", SESSION_PAGE.read_text(), re.DOTALL)
    assert match is not None, "no session block in docs/service.md"
    block = match.group(1)
    assert block.startswith(DOCUMENTED_URL) and DOCUMENTED_MODEL in block
    return block.replace(DOCUMENTED_URL, f"URL={url}\n", 1).replace(
        DOCUMENTED_MODEL, f'"name": "{model}"'
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A `peft-planner serve` on a fresh `data/peft-planner.db` under tmp_path; its URL."""
    with serving("data/peft-planner.db", tmp_path) as url:
        yield url


def test_the_documented_session_runs_as_written(server: str, tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", session_script(server, "bert-tiny")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "bert-base" in out.splitlines()[:20]  # the catalog
    assert '{"state":"succeeded",' in out
    assert "HTTP/1.1 201 Created" in out and "location: /v1/plans/" in out
    lines = out.splitlines()
    assert any(line.startswith('{"status":"optimal","params":') for line in lines)  # listed
    frontier = [line for line in lines if line.startswith('{"params":')]
    assert len(frontier) >= 2
    assert (tmp_path / "frontier.svg").read_text().startswith("<svg")
