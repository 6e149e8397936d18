"""Service instances (replicas) on one database: registration, heartbeats, and which are alive.

An instance is alive while its heartbeat is younger than the lease; one on this host whose
process is gone is dead at once (a service restarted after kill -9 recovers its jobs without
waiting out the lease). `live` is a subquery, evaluated by the statement that uses it: an instance
that registers and claims a job while another one sweeps is seen alive by the sweep.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import Engine, Select, delete, select, update
from sqlalchemy.orm import Session

from app.store.tables import InstanceRow, new_id, utcnow


def new_instance_id() -> str:
    """A fresh instance id: host, pid and a random part (at most 64 characters)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{new_id()[:12]}"


def register(engine: Engine, instance: str) -> None:
    """Record `instance` as this process, alive now."""
    with Session(engine) as session:
        session.merge(InstanceRow(id=instance, host=socket.gethostname(), pid=os.getpid(),
                                  started_at=utcnow(), heartbeat_at=utcnow()))
        session.commit()


def beat(engine: Engine, instance: str) -> None:
    """Refresh the heartbeat (registering again if the row was removed as dead meanwhile)."""
    with Session(engine) as session:
        n = session.execute(update(InstanceRow).where(InstanceRow.id == instance)
                            .values(heartbeat_at=utcnow())).rowcount
        session.commit()
    if n == 0:
        register(engine, instance)


def retire(engine: Engine, instance: str) -> None:
    """Remove the instance's row (a clean stop)."""
    with Session(engine) as session:
        session.execute(delete(InstanceRow).where(InstanceRow.id == instance))
        session.commit()


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def gone_here(engine: Engine) -> set[str]:
    """Ids of the instances on this host whose process is gone (dead, whatever their heartbeat says)."""
    here = socket.gethostname()
    with Session(engine) as session:
        rows = session.execute(select(InstanceRow.id, InstanceRow.pid).where(InstanceRow.host == here)).all()
    return {row.id for row in rows if row.pid != os.getpid() and _process_gone(row.pid)}


def live(lease_s: float, gone: set[str]) -> Select[tuple[str]]:
    """The ids of live instances, as a subquery: heartbeat within `lease_s`, and not in `gone`."""
    fresh = utcnow() - timedelta(seconds=lease_s)
    return select(InstanceRow.id).where(InstanceRow.heartbeat_at >= fresh, InstanceRow.id.not_in(gone))


def forget_dead(engine: Engine, alive: Select[tuple[str]]) -> int:
    """Remove the rows of instances not `alive`; returns how many."""
    with Session(engine) as session:
        n = session.execute(delete(InstanceRow).where(InstanceRow.id.not_in(alive))).rowcount
        session.commit()
    return n
