"""Query scopes: statement count and time for one request or task, and N+1 detection.

A scope is a context variable, so it follows the code that runs on behalf of one request: the
task that awaits an `AsyncSession` (SQLAlchemy runs the sync core in a greenlet that shares the
task's context), threads started with `contextvars.copy_context().run` or `asyncio.to_thread`,
and nothing else: two concurrent requests never see each other's statements. No ORM class is
patched; the statement hook of the monitor sees lazy loads like any other statement.
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
import threading
from contextvars import Token
from dataclasses import dataclass
from time import perf_counter
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from resilience_kit.sql._hub import ACTIVE_SCOPE

if TYPE_CHECKING:
    from resilience_kit.sql._monitor import QueryMonitor

__all__ = ["NPlusOne", "QueryScope"]

LOGGER = logging.getLogger("resilience_kit.sql")

_MAX_FINGERPRINTS = 10_000  # per scope: a scope that runs more distinct statements stops counting


@dataclass(frozen=True)
class NPlusOne:
    """One statement that ran `count` times in a scope: the N of an N+1 pattern.

    `location` is the first frame of application code (outside site-packages, the standard
    library and resilience_kit) on the stack when the statement reached the threshold, as
    `path:line in function`, or `None` when the stack holds no such frame.
    """

    fingerprint: str
    count: int
    location: str | None


class QueryScope:
    """Counts the statements one block of code runs; made by
    [QueryMonitor.scope][resilience_kit.sql.QueryMonitor.scope].

    Use it as `with monitor.scope("GET /users") as scope:` (or `async with`); afterwards (and
    during) `scope.queries`, `scope.total_time`, `scope.elapsed` and `scope.n_plus_one` tell what
    ran. Scopes nest: a statement counts in every enclosing scope of the same monitor.
    """

    def __init__(self, monitor: QueryMonitor, name: str) -> None:
        self.monitor = monitor
        self.name = name
        self.queries = 0
        self.total_time = 0.0
        self.parent: QueryScope | None = None
        self._counts: dict[str, int] = {}
        self._flagged: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._token: Token[QueryScope | None] | None = None
        self._started = 0.0
        self._ended: float | None = None

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds the scope has been (or was) open."""
        end = perf_counter() if self._ended is None else self._ended
        return end - self._started if self._started else 0.0

    @property
    def n_plus_one(self) -> tuple[NPlusOne, ...]:
        """Statements that ran at least `n_plus_one_threshold` times in this scope."""
        with self._lock:
            return tuple(
                NPlusOne(fingerprint, self._counts[fingerprint], location)
                for fingerprint, location in self._flagged.items()
            )

    def __enter__(self) -> QueryScope:
        self.parent = ACTIVE_SCOPE.get()
        self._token = ACTIVE_SCOPE.set(self)
        self._started = perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ended = perf_counter()
        token, self._token = self._token, None
        if token is not None:
            try:
                ACTIVE_SCOPE.reset(token)
            except ValueError:  # left in another context (e.g. an async generator's)
                ACTIVE_SCOPE.set(self.parent)

    async def __aenter__(self) -> QueryScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def record(self, statement: str, elapsed: float) -> None:
        """Count one statement (called by the monitor's hook)."""
        threshold = self.monitor.n_plus_one_threshold
        fingerprint = self.monitor.fingerprints.get(statement) if threshold is not None else ""
        with self._lock:
            self.queries += 1
            self.total_time += elapsed
            if threshold is None:
                return
            counts = self._counts
            count = counts.get(fingerprint)
            if count is None:
                if len(counts) >= _MAX_FINGERPRINTS:
                    return
                count = 0
            count += 1
            counts[fingerprint] = count
            if count != threshold:
                return
            location = application_frame()
            self._flagged[fingerprint] = location
        self.monitor.on_n_plus_one(self, fingerprint, count, location)

    def __repr__(self) -> str:
        return (
            f"<QueryScope {self.name!r} queries={self.queries} "
            f"total_time={self.total_time:.6f} n_plus_one={len(self._flagged)}>"
        )


def _library_roots() -> tuple[str, ...]:
    roots = {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.abspath(path))
    return tuple(sorted(roots))


_ROOTS = _library_roots()
_VERDICTS: dict[str, bool] = {}


def _is_application(filename: str) -> bool:
    verdict = _VERDICTS.get(filename)
    if verdict is None:
        path = os.path.abspath(filename)
        verdict = not (
            filename.startswith("<")
            or "site-packages" in path
            or "dist-packages" in path
            or path.startswith(_ROOTS)
        )
        if len(_VERDICTS) < 10_000:
            _VERDICTS[filename] = verdict
    return verdict


def application_frame(frame: FrameType | None = None) -> str | None:
    """`path:line in function` of the innermost frame of application code, or None.

    Under an `AsyncEngine` the statement runs in a greenlet whose stack holds only SQLAlchemy;
    the application's coroutines are on the stack of the greenlet that awaits it (suspended
    in SQLAlchemy's `greenlet_spawn`), so the parents' stacks are searched next.
    """
    found = _walk(sys._getframe(1) if frame is None else frame)
    if found is None:
        greenlet_module = sys.modules.get("greenlet")
        if greenlet_module is not None:
            parent = greenlet_module.getcurrent().parent
            while found is None and parent is not None:
                found = _walk(parent.gr_frame)
                parent = parent.parent
    return found


def _walk(frame: FrameType | None) -> str | None:
    while frame is not None:
        code = frame.f_code
        if _is_application(code.co_filename):
            return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back
    return None
