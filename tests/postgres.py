"""A real PostgreSQL server for tests: `initdb` and `pg_ctl` in a temporary directory, on a free port.

The server binaries are Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`, which
`make test-slow` installs) or any `initdb` on PATH. PostgreSQL refuses to run as root, so under
root the server runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port


def server_binaries() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres` (the newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    on_path = shutil.which("initdb")
    path = found[-1] if found else on_path
    return Path(path).parent if path else None


def missing_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    if server_binaries() is None:
        return "PostgreSQL server binaries (initdb) not found: apt-get install postgresql, or run `make test-slow`"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as the postgres user"
    return None


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """A running server for the block (fsync off: a test server); yields the URL of its `postgres` database."""
    bin_dir = server_binaries()
    assert bin_dir is not None, missing_reason()
    home = Path(tempfile.mkdtemp(prefix="peft-planner-pg-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    data, port = home / "data", free_port()

    def run(program: str, *args: str) -> None:
        subprocess.run(_as_server_user([str(bin_dir / program), *args]), check=True, capture_output=True, text=True)

    try:
        run("initdb", "-D", str(data), "-U", "planner", "--auth=trust", "-E", "UTF8", "--no-sync")
        run("pg_ctl", "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start")
        try:
            yield f"postgresql+psycopg://planner@127.0.0.1:{port}/postgres"
        finally:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server for the block (dropped after); yields its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
