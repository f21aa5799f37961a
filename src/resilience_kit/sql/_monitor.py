"""QueryMonitor: statistics per statement fingerprint for one SQLAlchemy engine."""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from resilience_kit._redact import MASK, _names_secret, redact
from resilience_kit._validation import check_choice, check_int, check_number
from resilience_kit.errors import ConfigurationError
from resilience_kit.sql._fingerprint import fingerprints_for, has_literals
from resilience_kit.sql._hub import Hub, Pending, hub_for
from resilience_kit.sql._scope import QueryScope
from resilience_kit.sql._stats import (
    DURATION_BOUNDS,
    DurationHistogram,
    PoolStats,
    QueryStats,
    StatementStats,
    StatementTable,
    _Row,
    check_bounds,
    duration_histogram,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from resilience_kit.sql._explain import Explainer

__all__ = ["QueryMonitor", "install_query_monitor", "monitors"]

LOGGER = logging.getLogger("resilience_kit.sql")

SortKey = Literal[
    "total_time", "calls", "mean_time", "max_time", "p50", "p95", "p99", "rows", "errors", "slow"
]
_SORT_KEYS: tuple[str, ...] = SortKey.__args__  # type: ignore[attr-defined]
_MAX_SQL_LOGGED = 2000
_MAX_VALUE_LOGGED = 200
_ROWS_LOGGED = 3
_BIND_SUFFIX = re.compile(r"_\d+$")
_IDENTIFIER = re.compile(r"[A-Za-z_][\w$]*")


_LIVE: weakref.WeakSet[QueryMonitor] = weakref.WeakSet()


def monitors() -> tuple[QueryMonitor, ...]:
    """Every installed monitor not yet removed (for collectors that read them all, such as a
    Prometheus exporter at scrape time). Holds no reference: a monitor dropped without
    `remove()` disappears with its engine.
    """
    return tuple(_LIVE)


class _PoolCounters:
    __slots__ = ("checkouts", "lock", "max_wait", "timeouts", "wait_time")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checkouts = self.timeouts = 0
        self.wait_time = self.max_wait = 0.0

    def add(self, waited: float, *, timed_out: bool) -> None:
        with self.lock:
            self.wait_time += waited
            self.max_wait = max(waited, self.max_wait)
            if timed_out:
                self.timeouts += 1
            else:
                self.checkouts += 1


def install_query_monitor(
    engine: Engine | AsyncEngine,
    *,
    slow_threshold: float = 1.0,
    log_parameters: bool = False,
    max_statements: int = 1000,
    n_plus_one_threshold: int | None = 10,
    explain_slow: bool = False,
    explain_interval: float = 60.0,
) -> QueryMonitor:
    """Start monitoring every statement `engine` runs; returns the monitor.

    Works on an `Engine` or an `AsyncEngine`, on any number of engines at once (one monitor
    each, or several on one engine); `monitor.remove()` undoes it exactly.

    Args:
        engine: The engine to watch.
        slow_threshold: Seconds from which a statement is slow: counted in `slow_queries` and
            logged at WARNING on the `resilience_kit.sql` logger. `0` logs every statement.
        log_parameters: Show the bound parameters in the slow-query log. Off by default; even
            on, values of parameters named like a secret (password, token, secret, key, ...)
            are masked, and the whole line goes through the library's redaction.
        max_statements: Fingerprints with a row of their own; beyond, the least costly are
            folded into one `other` row (counted in `evictions`).
        n_plus_one_threshold: Executions of one fingerprint within one
            [scope][resilience_kit.sql.QueryMonitor.scope] that flag an N+1 pattern; None
            turns detection off.
        explain_slow: On PostgreSQL, run `EXPLAIN (FORMAT JSON)` for slow `SELECT`s on a
            separate connection and attach the plan to the statement's stats.
        explain_interval: Seconds between two EXPLAINs of one fingerprint (and at most one runs
            at a time).

    Raises:
        ConfigurationError: A parameter is outside its range, or `explain_slow` on a database
            other than PostgreSQL.
    """
    return QueryMonitor(
        engine,
        slow_threshold=slow_threshold,
        log_parameters=log_parameters,
        max_statements=max_statements,
        n_plus_one_threshold=n_plus_one_threshold,
        explain_slow=explain_slow,
        explain_interval=explain_interval,
    )


class QueryMonitor:
    """An in-process `pg_stat_statements` for one engine; made by
    [install_query_monitor][resilience_kit.sql.install_query_monitor].

    Reading methods ([stats][resilience_kit.sql.QueryMonitor.stats],
    [top][resilience_kit.sql.QueryMonitor.top], [to_dict][resilience_kit.sql.QueryMonitor.to_dict])
    are thread-safe and do no I/O. A failure inside the monitor is logged once (at ERROR, on the
    `resilience_kit.sql` logger) and never reaches the statement that triggered it.
    """

    def __init__(
        self,
        engine: Engine | AsyncEngine,
        *,
        slow_threshold: float = 1.0,
        log_parameters: bool = False,
        max_statements: int = 1000,
        n_plus_one_threshold: int | None = 10,
        explain_slow: bool = False,
        explain_interval: float = 60.0,
    ) -> None:
        sync_engine = _sync_engine(engine)
        self.slow_threshold = check_number("slow_threshold", slow_threshold, minimum=0)
        self.log_parameters = bool(log_parameters)
        self.max_statements = check_int("max_statements", max_statements, minimum=1)
        if n_plus_one_threshold is not None:
            check_int("n_plus_one_threshold", n_plus_one_threshold, minimum=2)
        self.n_plus_one_threshold = n_plus_one_threshold
        check_number("explain_interval", explain_interval, minimum=0)
        self.engine = engine
        self.explainer: Explainer | None = None
        if explain_slow:
            from resilience_kit.sql._explain import Explainer

            self.explainer = Explainer(engine, interval=explain_interval)
        self.pool_counters = _PoolCounters()
        # Fingerprints follow the engine's lexis: MySQL reads backslashes and quotes its way.
        self.fingerprints = fingerprints_for(sync_engine.dialect.name)
        self._table = StatementTable(self.max_statements)
        self._n_plus_one = 0
        self._reported_failure = False
        self._removed = False
        self.hub: Hub = hub_for(sync_engine)
        self.hub.add(self)
        _LIVE.add(self)

    # -- reading ------------------------------------------------------------------------------

    def stats(self) -> QueryStats:
        """Totals over every statement since install or the last `reset()`."""
        hub = self.hub
        hub.fold()
        with hub.lock:
            table = self._table
            calls = table.calls
            return QueryStats(
                total_queries=calls,
                slow_queries=table.slow,
                errors=table.errors,
                total_time=table.total,
                avg_time=table.total / calls if calls else 0.0,
                slow_query_percentage=100.0 * table.slow / calls if calls else 0.0,
                rows=table.rows,
                statements=len(table.statements),
                evictions=table.evictions,
                n_plus_one=self._n_plus_one,
                pool=self._pool_stats(),
            )

    def top(self, n: int = 10, *, by: SortKey = "total_time") -> list[StatementStats]:
        """The `n` costliest fingerprints by `by` (the `other` row competes like any other).

        `by` is one of `total_time`, `calls`, `mean_time`, `max_time`, `p50`, `p95`, `p99`,
        `rows`, `errors`, `slow`.
        """
        check_int("n", n, minimum=0)
        check_choice("by", by, _SORT_KEYS)
        self.hub.fold()
        with self.hub.lock:
            rows = self._table.every_row()
            snapshots = [self._snapshot(row) for row in rows]
        snapshots.sort(key=lambda stats: getattr(stats, by), reverse=True)
        return snapshots[:n]

    def duration_histogram(self, bounds: Iterable[float] = DURATION_BOUNDS) -> DurationHistogram:
        """How long every statement took, as a cumulative histogram over `bounds` (seconds).

        Covers every statement since install or the last `reset()`, the `other` row's
        included; exporters (Prometheus, OpenTelemetry) read it at scrape time.

        Example:
            ```python
            import sqlalchemy as sa
            from resilience_kit.sql import install_query_monitor

            engine = sa.create_engine("sqlite://")
            monitor = install_query_monitor(engine)
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            histogram = monitor.duration_histogram((0.01, 0.1, 1.0))
            assert histogram.count == 1
            assert histogram.buckets[-1] == (float("inf"), 1)
            monitor.remove()
            ```

        Raises:
            ConfigurationError: `bounds` are not finite, positive and strictly ascending.
        """
        checked = check_bounds(bounds)
        hub = self.hub
        hub.fold()
        with hub.lock:
            return duration_histogram(self._table.every_row(), checked)

    def to_dict(self, *, top: int = 10) -> dict[str, Any]:
        """The `/admin/db_metrics` answer: `{"db_metrics": {...}}`, JSON-able.

        The original fields (`total_queries`, `slow_queries`, `total_time`, `avg_time`,
        `slow_query_percentage`) come first, then `errors`, `rows`, `statements`,
        `evictions`, `n_plus_one`, `slow_threshold`, `pool` and the `top` costliest
        statements by total time.
        """
        stats = self.stats()
        metrics: dict[str, Any] = {
            "total_queries": stats.total_queries,
            "slow_queries": stats.slow_queries,
            "total_time": round(stats.total_time, 6),
            "avg_time": round(stats.avg_time, 6),
            "slow_query_percentage": round(stats.slow_query_percentage, 2),
            "errors": stats.errors,
            "rows": stats.rows,
            "statements": stats.statements,
            "evictions": stats.evictions,
            "n_plus_one": stats.n_plus_one,
            "slow_threshold": self.slow_threshold,
            "pool": None if stats.pool is None else stats.pool.to_dict(),
            "top_statements": [row.to_dict() for row in self.top(top)],
        }
        return {"db_metrics": metrics}

    def _snapshot(self, row: _Row) -> StatementStats:
        plan = None if self.explainer is None else self.explainer.plans.get(row.fingerprint)
        return row.snapshot(plan)

    def _pool_stats(self) -> PoolStats | None:
        try:
            pool = self.hub.pool
        except Exception:  # pragma: no cover - an engine always has a pool
            return None
        counters = self.pool_counters
        overflow = _call(pool, "overflow")
        return PoolStats(
            max_connections=_max_connections(pool),
            pool=type(pool).__name__,
            size=_call(pool, "size"),
            checked_out=_call(pool, "checkedout"),
            overflow=None if overflow is None else max(0, overflow),
            checkouts=counters.checkouts,
            wait_time=counters.wait_time,
            max_wait=counters.max_wait,
            timeouts=counters.timeouts,
        )

    # -- control ------------------------------------------------------------------------------

    def scope(self, name: str) -> QueryScope:
        """A context manager counting the statements of one request or task.

        Example:
            ```python
            import sqlalchemy as sa
            from resilience_kit.sql import install_query_monitor

            engine = sa.create_engine("sqlite://")
            monitor = install_query_monitor(engine)
            with monitor.scope("GET /users") as scope, engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            assert scope.queries == 1
            print(scope.total_time, scope.n_plus_one)
            monitor.remove()
            ```
        """
        return QueryScope(self, str(name))

    def reset(self) -> None:
        """Forget every statistic (the hooks stay in place)."""
        hub = self.hub
        hub.fold()
        with hub.lock:
            self._table = StatementTable(self.max_statements)
            self.pool_counters = _PoolCounters()
            self._n_plus_one = 0
            if self.explainer is not None:
                self.explainer.plans.clear()

    def remove(self) -> None:
        """Unhook from the engine; the statistics gathered so far stay readable.

        Leaves the engine's, dialect's and pool's listener collections exactly as they were
        before [install_query_monitor][resilience_kit.sql.install_query_monitor].
        Calling it again does nothing.
        """
        if self._removed:
            return
        self._removed = True
        _LIVE.discard(self)
        self.hub.discard(self)
        if self.explainer is not None:
            self.explainer.close()

    # -- called by the hook ---------------------------------------------------------------------

    def fold(self, batch: Pending) -> None:
        """Group a batch of `(statement, seconds, rowcount)` into the table (hub lock held)."""
        slow_threshold = self.slow_threshold
        by_text: dict[str, list[Any]] = {}
        for statement, elapsed, rowcount in batch:
            entry = by_text.get(statement)
            if entry is None:
                entry = by_text[statement] = [[], 0, 0, 0]
            entry[0].append(elapsed)
            if rowcount is None:
                entry[2] += 1
            elif rowcount > 0:
                entry[1] += rowcount
            if elapsed >= slow_threshold:
                entry[3] += 1
        table = self._table
        fingerprints = self.fingerprints
        for statement, (durations, rows, errors, slow) in by_text.items():
            table.add(table.row(fingerprints.get(statement)), durations, rows, errors, slow)

    def on_slow(
        self, statement: str, parameters: Any, context: Any, elapsed: float, *, failed: bool
    ) -> None:
        """Log one slow statement (and queue its EXPLAIN)."""
        fingerprint = self.fingerprints.get(statement)
        LOGGER.warning(
            "SLOW QUERY%s (%.3fs, threshold %.3fs)\nFingerprint: %s\nSQL: %s\nParameters: %s",
            " (failed)" if failed else "",
            elapsed,
            self.slow_threshold,
            redact(fingerprint, max_length=_MAX_SQL_LOGGED),
            self._format_sql(statement, fingerprint),
            self._format_parameters(statement, parameters, context),
            extra={"duration": elapsed, "fingerprint": fingerprint},
        )
        if self.explainer is not None and not failed:
            self.explainer.submit(statement, parameters, fingerprint)

    def on_n_plus_one(
        self, scope: QueryScope, fingerprint: str, count: int, location: str | None
    ) -> None:
        """Log one N+1 pattern a scope found."""
        with self.hub.lock:
            self._n_plus_one += 1
        LOGGER.warning(
            "N+1 QUERY in scope %r: %d executions of one statement, from %s\nFingerprint: %s",
            scope.name,
            count,
            location or "an unknown location",
            redact(fingerprint, max_length=_MAX_SQL_LOGGED),
            extra={"fingerprint": fingerprint, "location": location, "scope": scope.name},
        )

    def internal_error(self, error: BaseException) -> None:
        """Log the monitor's own failure, once; the user's statement is unaffected."""
        if self._reported_failure:
            return
        self._reported_failure = True
        LOGGER.error(
            "resilience_kit query monitor failed; its statistics may be incomplete "
            "(reported once): %s: %s",
            type(error).__name__,
            redact(str(error), max_length=_MAX_SQL_LOGGED),
        )

    def _format_sql(self, statement: str, fingerprint: str) -> str:
        # Values written into the statement's text are parameters too: without
        # log_parameters they are shown as the fingerprint shows them, as "?".
        if not self.log_parameters and has_literals(statement, self.fingerprints.dialect):
            statement = fingerprint
        return redact(statement, max_length=_MAX_SQL_LOGGED)

    def _format_parameters(self, statement: str, parameters: Any, context: Any) -> str:
        if parameters is None or (isinstance(parameters, (Mapping, Sequence)) and not parameters):
            return "none"
        if not self.log_parameters:
            return "[redacted; install_query_monitor(log_parameters=True) shows them]"
        names = _positional_names(context)
        if _is_many(parameters):
            shown = [_mask(row, names, statement) for row in list(parameters)[:_ROWS_LOGGED]]
            text = f"{shown} ({len(parameters)} rows)"
        else:
            text = repr(_mask(parameters, names, statement))
        return redact(text, max_length=_MAX_SQL_LOGGED)

    def __repr__(self) -> str:
        state = "removed" if self._removed else "installed"
        return f"<QueryMonitor {state} on {self.engine!r} slow_threshold={self.slow_threshold}>"


def _sync_engine(engine: Any) -> Engine:
    from sqlalchemy.engine import Engine

    sync = getattr(engine, "sync_engine", engine)
    if not isinstance(sync, Engine):
        raise ConfigurationError(
            f"engine must be a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}",
            parameter="engine",
            value=engine,
        )
    return sync


def _call(pool: Any, method: str) -> int | None:
    function = getattr(pool, method, None)
    if function is None:
        return None
    try:
        value = function()
    except Exception:  # pragma: no cover - pools answer these without I/O
        return None
    return value if isinstance(value, int) else None


def _max_connections(pool: Any) -> int | None:
    """``pool_size + max_overflow`` of a QueuePool; None for a pool without a fixed limit."""
    size = _call(pool, "size")
    overflow = getattr(pool, "_max_overflow", None)
    if size is None or not isinstance(overflow, int) or overflow < 0:
        return None
    return size + overflow


def _is_many(parameters: Any) -> bool:
    return (
        isinstance(parameters, list)
        and bool(parameters)
        and isinstance(parameters[0], (Mapping, tuple, list))
    )


def _positional_names(context: Any) -> list[str] | None:
    compiled = getattr(context, "compiled", None)
    names = getattr(compiled, "positiontup", None)
    return list(names) if names else None


def _names_a_secret(name: str) -> bool:
    return _names_secret(_BIND_SUFFIX.sub("", name))


def _mask(parameters: Any, names: list[str] | None, statement: str) -> Any:
    if isinstance(parameters, Mapping):
        return {
            key: MASK if _names_a_secret(str(key)) else _short(value)
            for key, value in parameters.items()
        }
    values = list(parameters) if isinstance(parameters, (tuple, list)) else [parameters]
    if names is not None and len(names) == len(values):
        return [
            MASK if _names_a_secret(n) else _short(v) for n, v in zip(names, values, strict=True)
        ]
    # Positional values without names: if the statement mentions a secret column anywhere,
    # any of them may be it.
    if any(_names_a_secret(word) for word in _IDENTIFIER.findall(statement)):
        return [MASK] * len(values)
    return [_short(value) for value in values]


def _short(value: Any) -> Any:
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    text = repr(value)
    if len(text) > _MAX_VALUE_LOGGED:
        return text[: _MAX_VALUE_LOGGED - 1] + "\u2026"
    return value
