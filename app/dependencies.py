"""FastAPI dependencies and what request handlers share: settings, database sessions, job runner, metrics, caches."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from fastapi import Depends, Query, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.jobs.runner import JobRunner
from app.metrics import Metrics
from app.settings import Settings


class LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: Any, load: Callable[[], Any]) -> Any:
        """The cached value for `key`, loading (outside the lock) on a miss."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        self.put(key, value)
        return value

    def get(self, key: Any) -> Any:
        """The cached value, or None."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: Any, value: Any) -> None:
        """Cache a value, evicting the least recently used beyond `size`."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass
class Context:
    """The running service's shared state (one per app)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker
    metrics: Metrics
    instance: str
    """This process's service instance id (`app.instance`)."""
    runner: JobRunner | None = None
    profiles: LRU = field(default_factory=lambda: LRU(32))
    frontiers: LRU = field(default_factory=lambda: LRU(64))
    problems: LRU = field(default_factory=lambda: LRU(128))
    solved: LRU = field(default_factory=lambda: LRU(4096))
    computing: anyio.CapacityLimiter = field(init=False)
    """Plan requests computing at once (`settings.max_concurrent_solves`)."""

    def __post_init__(self) -> None:
        self.computing = anyio.CapacityLimiter(self.settings.max_concurrent_solves)


async def get_context(request: Request) -> Context:
    """FastAPI dependency: the app's context (async: no worker-thread hop to fetch it)."""
    return request.app.state.context


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: a database session closed after the request."""
    with request.app.state.context.sessions() as session:
        yield session


Ctx = Annotated[Context, Depends(get_context)]
Db = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class PageQuery:
    """The window a list endpoint returns: `limit` items from `offset`, newest first."""

    limit: int
    offset: int


def page_query(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> PageQuery:
    """FastAPI dependency: the `limit` and `offset` query parameters of a list endpoint."""
    return PageQuery(limit, offset)


Paging = Annotated[PageQuery, Depends(page_query)]
