"""The per-engine hook: times every statement on the dialect's ``do_execute`` events.

Why these events and not the usual ``before_cursor_execute``/``after_cursor_execute`` pair: any
listener on the engine's connection events switches SQLAlchemy onto its event path for every
statement, transaction begin and commit (dispatch joins, a wrapper frame for each
``before_cursor_execute`` listener), which costs more than everything the monitor does. The
dialect events ``do_execute``, ``do_executemany`` and ``do_execute_no_params`` are consulted at
the one point where the driver runs the statement: the listener runs it itself (through the
dialect's own method, so nothing about execution changes), times it and returns True. An error
raised by the driver passes through unchanged, after it is counted; that is where
``handle_error`` would have seen it.

The hot path only appends ``(statement, seconds, rowcount)`` to a list; grouping by
fingerprint, histograms and totals happen in batches ("folds"), at most every
[FOLD_EVERY][resilience_kit.sql._hub.FOLD_EVERY] statements and whenever statistics are read.
The listener is registered last, so a ``do_execute`` listener of someone else's that runs the
statement itself still does (the monitor then does not see that statement).

One hub serves every monitor installed on one engine: the hot path does not grow with their
number. Pool signals come from wrapping the pool's ``_do_get`` (the one place where a checkout
waits), re-attached when ``engine.dispose()`` replaces the pool.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from time import perf_counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    from resilience_kit.sql._monitor import QueryMonitor
    from resilience_kit.sql._scope import QueryScope

__all__ = ["ACTIVE_SCOPE", "FOLD_EVERY", "Hub", "hub_for"]

LOGGER = logging.getLogger("resilience_kit.sql")

FOLD_EVERY = 2048
"""Statements buffered before they are grouped into the statistics."""

ACTIVE_SCOPE: ContextVar[QueryScope | None] = ContextVar("resilience_kit_sql_scope", default=None)

_UNSET = object()
# Values are weak too: a hub refers to its engine, so a strong value would keep every engine
# (its pool and connections) alive for ever. The engine's listeners and the monitors hold it.
_HUBS: weakref.WeakKeyDictionary[Any, weakref.ref[Hub]] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()

Pending = list[tuple[str, float, "int | None"]]


def hub_for(engine: Engine) -> Hub:
    """The engine's hub, created and hooked in on first use."""
    with _HUBS_LOCK:
        found = _HUBS.get(engine)
        hub = None if found is None else found()
        if hub is None:
            hub = Hub(engine)
            _HUBS[engine] = weakref.ref(hub)
        return hub


class Hub:
    """The statement and pool hooks of one engine, shared by its monitors."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.monitors: tuple[QueryMonitor, ...] = ()
        self.pending: Pending = []
        self.lock = threading.RLock()
        self.slow_floor = float("inf")
        self._listeners: list[tuple[str, Callable[..., Any]]] = []
        self._pool: Pool | None = None
        self._pool_originals: dict[str, Any] = {}
        self._dialect_flag: object = _UNSET

    # -- monitors -----------------------------------------------------------------------------

    def add(self, monitor: QueryMonitor) -> None:
        with self.lock:
            if not self.monitors:
                self._hook()
            # Statements buffered so far ran before this monitor existed: they belong to the
            # monitors already installed only.
            self.fold()
            self.monitors = (*self.monitors, monitor)
            self.slow_floor = min(m.slow_threshold for m in self.monitors)

    def discard(self, monitor: QueryMonitor) -> None:
        with self.lock:
            self.fold()
            self.monitors = tuple(m for m in self.monitors if m is not monitor)
            if self.monitors:
                self.slow_floor = min(m.slow_threshold for m in self.monitors)
                return
            self._unhook()
            self.pending.clear()
            with _HUBS_LOCK:
                found = _HUBS.get(self.engine)
                if found is not None and found() is self:
                    del _HUBS[self.engine]

    def _hook(self) -> None:
        dialect = self.engine.dialect
        self._dialect_flag = vars(dialect).get("_has_events", _UNSET)
        self._listeners = [*_statement_listeners(self), ("connect", self._on_pool_connect)]
        for name, listener in self._listeners:
            event.listen(self.engine, name, listener)
        self.attach_pool()

    def _unhook(self) -> None:
        for name, listener in self._listeners:
            event.remove(self.engine, name, listener)
        self._listeners = []
        self._detach_pool()
        # SQLAlchemy never lowers the flag that sends every statement through the dialect's
        # event loops; put it back as it was when no dialect listener is left.
        dialect = self.engine.dialect
        dispatch = dialect.dispatch
        if not any(len(getattr(dispatch, str(name))) for name in dispatch._event_names):
            if self._dialect_flag is _UNSET:
                vars(dialect).pop("_has_events", None)
            elif not self._dialect_flag:
                dialect._has_events = False

    # -- after a statement --------------------------------------------------------------------

    def timed(
        self,
        run: Callable[..., Any],
        args: tuple[Any, ...],
        statement: str,
        parameters: Any,
        context: Any,
    ) -> bool:
        """Run, time and record an `executemany` or a statement without parameters."""
        start = perf_counter()
        try:
            run(*args)
        except BaseException:
            self.failed(statement, parameters, context, perf_counter() - start)
            raise
        elapsed = perf_counter() - start
        try:
            rowcount = args[0].rowcount
            if rowcount < 0 and parameters is not None:
                rowcount = len(parameters)  # executemany on a driver that does not count
            self.pending.append((statement, elapsed, rowcount))
        except Exception as error:
            self.internal_error(error)
        self.after(statement, parameters, context, elapsed)
        return True

    def failed(self, statement: str, parameters: Any, context: Any, elapsed: float) -> None:
        """Count a statement the driver rejected; never raises (the user's error goes on)."""
        self.pending.append((statement, elapsed, None))
        self.after(statement, parameters, context, elapsed, failed=True)

    def after(
        self,
        statement: str,
        parameters: Any,
        context: Any,
        elapsed: float,
        *,
        failed: bool = False,
    ) -> None:
        """The slow path: slow-query log, scopes, folding a full buffer."""
        try:
            if elapsed >= self.slow_floor:
                for monitor in self.monitors:
                    if elapsed >= monitor.slow_threshold:
                        monitor.on_slow(statement, parameters, context, elapsed, failed=failed)
            scope = ACTIVE_SCOPE.get()
            while scope is not None:
                if scope.monitor.hub is self:
                    scope.record(statement, elapsed)
                scope = scope.parent
            if len(self.pending) >= FOLD_EVERY:
                self.fold()
        except Exception as error:
            self.internal_error(error)

    def internal_error(self, error: BaseException) -> None:
        for monitor in self.monitors:
            monitor.internal_error(error)

    def fold(self) -> None:
        """Move the buffered statements into every monitor's table."""
        with self.lock:
            pending = self.pending
            count = len(pending)
            if not count:
                return
            # Slicing and deleting are each atomic: an append racing with them lands past
            # `count` and waits for the next fold.
            batch = pending[:count]
            del pending[:count]
            for monitor in self.monitors:
                try:
                    monitor.fold(batch)
                except Exception as error:
                    monitor.internal_error(error)

    # -- pool ---------------------------------------------------------------------------------

    def _on_pool_connect(self, dbapi_connection: Any, connection_record: Any) -> None:
        if self.engine.pool is not self._pool:
            # The first connection of the pool `engine.dispose()` made: its checkout is under
            # way in the unwrapped `_do_get`; count it here (creating a connection is no wait).
            self.attach_pool()
            self.on_checkout(0.0, timed_out=False)

    def attach_pool(self) -> None:
        """Wrap the engine's current pool (again, after `dispose()` replaced it)."""
        with self.lock:
            pool = self.engine.pool
            if pool is self._pool:
                return
            self._detach_pool()
            self._pool = pool
            own = vars(pool)
            self._pool_originals = {
                name: own.get(name) for name in ("_do_get", "_create_connection")
            }
            do_get, create = pool._do_get, pool._create_connection
            created: dict[int, float] = {}
            hub = self

            def create_connection() -> Any:
                start = perf_counter()
                record = create()
                created[id(record)] = perf_counter() - start
                return record

            def timed_do_get() -> Any:
                start = perf_counter()
                try:
                    record = do_get()
                except sa_exc.TimeoutError:
                    hub.on_checkout(perf_counter() - start, timed_out=True)
                    raise
                waited = perf_counter() - start - created.pop(id(record), 0.0)
                hub.on_checkout(waited, timed_out=False)
                return record

            pool._create_connection = create_connection  # type: ignore[method-assign]
            pool._do_get = timed_do_get  # type: ignore[method-assign]

    def _detach_pool(self) -> None:
        pool = self._pool
        if pool is None:
            return
        for name, original in self._pool_originals.items():
            if original is None:
                vars(pool).pop(name, None)
            else:
                setattr(pool, name, original)
        self._pool = None
        self._pool_originals = {}

    def on_checkout(self, waited: float, *, timed_out: bool) -> None:
        try:
            for monitor in self.monitors:
                monitor.pool_counters.add(waited, timed_out=timed_out)
        except Exception as error:  # pragma: no cover - counting cannot fail in practice
            self.internal_error(error)

    @property
    def pool(self) -> Pool:
        """The pool the hub watches (re-attached first if the engine has a new one)."""
        if self.engine.pool is not self._pool and self.monitors:
            self.attach_pool()
        return self.engine.pool


def _statement_listeners(hub: Hub) -> list[tuple[str, Callable[..., Any]]]:
    dialect = hub.engine.dialect
    execute, executemany = dialect.do_execute, dialect.do_executemany
    no_params = dialect.do_execute_no_params
    pending = hub.pending
    append = pending.append
    after, failed, timed = hub.after, hub.failed, hub.timed
    current_scope = ACTIVE_SCOPE.get

    # The hot path, kept flat on purpose: every attribute read and call here is paid by every
    # statement of the application.
    def on_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        start = perf_counter()
        try:
            execute(cursor, statement, parameters, context)
        except BaseException:
            failed(statement, parameters, context, perf_counter() - start)
            raise
        elapsed = perf_counter() - start
        try:
            append((statement, elapsed, cursor.rowcount))
            if elapsed >= hub.slow_floor or current_scope() or len(pending) >= FOLD_EVERY:
                after(statement, parameters, context, elapsed)
        except Exception as error:
            hub.internal_error(error)
        return True

    def on_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        args = (cursor, statement, parameters, context)
        return timed(executemany, args, statement, parameters, context)

    def on_no_params(cursor: Any, statement: str, context: Any) -> bool:
        return timed(no_params, (cursor, statement, context), statement, None, context)

    return [
        ("do_execute", on_execute),
        ("do_executemany", on_executemany),
        ("do_execute_no_params", on_no_params),
    ]
