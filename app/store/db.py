"""Engine creation: SQLite in WAL mode by default, PostgreSQL (`postgresql+psycopg://...`) as the shared store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from app.store.migrate import add_missing_columns
from app.store.tables import Base

# One pooled connection per request worker thread (anyio's default limit is 40):
# with the default pool of 5, busy moments opened and closed a connection (and
# ran the pragmas again) per request.
SQLITE_POOL_SIZE = 40
MIGRATION_LOCK = 0x70656674  # the PostgreSQL advisory lock replicas take around start-up migrations
_write_locks: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()


def database_url(db: str) -> str:
    """Turn the `db` setting (a file path or a URL) into a SQLAlchemy URL."""
    if "://" in db:
        return db
    path = Path(db).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_store_engine(db: str) -> Engine:
    """An engine for `db`; SQLite connections get WAL, busy_timeout and foreign keys."""
    url = database_url(db)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        _write_locks[engine] = threading.Lock()
        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def writing(session: Session) -> Iterator[None]:
    """Hold the in-process write lock of the session's SQLite engine around a write transaction.

    SQLite has one writer at a time, and a connection that finds the database
    locked waits in SQLite's busy handler, which sleeps in steps of up to
    100 ms: with 16 plan requests writing at once that alone made p99 latency
    0.5-1 s. Threads of one process queue on a lock instead. Other databases
    (and other processes) still rely on the database's own locking.
    """
    lock = _write_locks.get(session.get_bind())
    if lock is None:
        yield
        return
    with lock:
        yield


def init_db(engine: Engine) -> None:
    """Create missing tables, and add columns that tables made by older versions lack, in one transaction.

    On PostgreSQL the transaction holds an advisory lock first, so replicas starting together
    migrate one after the other (the later ones find nothing left to do).
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        Base.metadata.create_all(connection)
        add_missing_columns(connection)


def session_factory(engine: Engine) -> sessionmaker:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
