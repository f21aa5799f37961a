"""EXPLAIN of slow SELECTs on PostgreSQL, off the statement's path.

The plan is taken with plain `EXPLAIN (FORMAT JSON)`, which plans the statement without running
it, on a connection of its own (a `NullPool` engine on the same URL and connect function, never
the monitored pool: a pool of one would deadlock, and the user's connection may be
mid-transaction), in a background thread, under `statement_timeout` of 5 s. Only `SELECT`s (and
`WITH` queries that write nothing) are explained; at most one EXPLAIN runs at a time and each
fingerprint at most once per `interval` seconds, so a flood of slow statements costs at most one
planner call at a time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from typing import Any

from resilience_kit._redact import redact
from resilience_kit.errors import ConfigurationError

__all__ = ["Explainer", "is_read_only_select"]

LOGGER = logging.getLogger("resilience_kit.sql")

_READ = re.compile(r"^\s*(?:select|with)\b")
_WRITE = re.compile(r"\b(?:insert|update|delete|merge|into|lock|nextval|setval)\b")
_MAX_REMEMBERED = 10_000


def is_read_only_select(fingerprint: str) -> bool:
    """True for a `SELECT` (or a `WITH ... SELECT`) that writes and locks nothing."""
    return _READ.match(fingerprint) is not None and _WRITE.search(fingerprint) is None


class Explainer:
    """Runs and keeps EXPLAIN plans for one monitor."""

    def __init__(self, engine: Any, *, interval: float) -> None:
        sync_engine = getattr(engine, "sync_engine", engine)
        if sync_engine.dialect.name != "postgresql":
            raise ConfigurationError(
                f"explain_slow needs PostgreSQL, got a {sync_engine.dialect.name} engine",
                parameter="explain_slow",
                value=True,
            )
        self.url = sync_engine.url
        # The monitored engine's own connect function: its connect_args (sslmode, options
        # such as search_path) and do_connect hooks apply to the EXPLAIN connection too.
        self.creator = sync_engine.pool._creator
        self.is_async = sync_engine.dialect.is_async
        self.interval = interval
        self.plans: dict[str, Any] = {}
        self.explained = 0
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, statement: str, parameters: Any, fingerprint: str) -> None:
        """Explain `statement` in the background unless rate-limited or not a read."""
        if self._closed or not is_read_only_select(fingerprint):
            return
        now = time.monotonic()
        with self._lock:
            busy = self._thread is not None and self._thread.is_alive()
            if busy or now - self._last.get(fingerprint, -float("inf")) < self.interval:
                return
            if len(self._last) >= _MAX_REMEMBERED:
                self._last.clear()
            self._last[fingerprint] = now
            self._thread = threading.Thread(
                target=self._run,
                args=(statement, parameters, fingerprint),
                name="resilience_kit-explain",
                daemon=True,
            )
            self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the EXPLAIN in flight, if any (for tests and orderly shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def close(self) -> None:
        """Stop explaining; an EXPLAIN in flight finishes on its own."""
        self._closed = True

    def _run(self, statement: str, parameters: Any, fingerprint: str) -> None:
        try:
            if self.is_async:
                plan = asyncio.run(self._explain_async(statement, parameters))
            else:
                plan = self._explain_sync(statement, parameters)
        except Exception as error:
            LOGGER.warning(
                "EXPLAIN of a slow statement failed: %s: %s",
                type(error).__name__,
                redact(str(error), max_length=500),
            )
            return
        if len(self.plans) >= _MAX_REMEMBERED and fingerprint not in self.plans:
            return
        self.plans[fingerprint] = plan
        self.explained += 1

    def _explain_sync(self, statement: str, parameters: Any) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        engine = create_engine(self.url, poolclass=NullPool, creator=self.creator)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SET statement_timeout = 5000")
                result = connection.exec_driver_sql(
                    "EXPLAIN (FORMAT JSON) " + statement, _driver_parameters(parameters)
                )
                plan = result.scalar()
                connection.rollback()
                return plan
        finally:
            engine.dispose()

    async def _explain_async(self, statement: str, parameters: Any) -> Any:
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        engine = create_async_engine(self.url, poolclass=NullPool, creator=self.creator)
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql("SET statement_timeout = 5000")
                result = await connection.exec_driver_sql(
                    "EXPLAIN (FORMAT JSON) " + statement, _driver_parameters(parameters)
                )
                plan = result.scalar()
                await connection.rollback()
                return plan
        finally:
            await engine.dispose()


def _driver_parameters(parameters: Any) -> Any:
    if parameters is None or (not isinstance(parameters, dict) and not parameters):
        return None
    return parameters if isinstance(parameters, dict) else tuple(parameters)
