"""Health checks: run every dependency check at once, each on its own timer, and report.

A [HealthChecker][resilience_kit.health.HealthChecker] holds named checks. Probing it runs them
concurrently, each under its own timeout, so one hung dependency never delays the others nor the
probe beyond that timeout; the report is cached for a short time so that frequent probes (a load
balancer, Kubernetes, a dashboard) do not hammer the dependencies. A check is any callable, sync
or async, returning a [CheckResult][resilience_kit.health.CheckResult] or a truthy/falsy value;
an exception or a timeout makes it unhealthy. Ready-made checks:
[check_sqlalchemy][resilience_kit.health.check_sqlalchemy],
[check_redis][resilience_kit.health.check_redis],
[check_breaker][resilience_kit.health.check_breaker] and
[check_callable][resilience_kit.health.check_callable].
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import inspect
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeAlias

from resilience_kit._callables import is_async_callable
from resilience_kit._health_checks import (
    check_breaker,
    check_callable,
    check_redis,
    check_sqlalchemy,
)
from resilience_kit._redact import redact
from resilience_kit._validation import check_number
from resilience_kit.clock import Clock, default_clock
from resilience_kit.errors import ConfigurationError

__all__ = [
    "Check",
    "CheckResult",
    "HealthChecker",
    "HealthReport",
    "HealthStatus",
    "check_breaker",
    "check_callable",
    "check_redis",
    "check_sqlalchemy",
    "checkers",
]

Check: TypeAlias = Callable[[], Any]
"""A health check: a callable taking no arguments, sync or async.

It returns (or its coroutine resolves to) a [CheckResult][resilience_kit.health.CheckResult],
or any other value, judged by truthiness (truthy: healthy). Raising makes the check unhealthy
with the error as its message. A sync check runs in a worker thread, so a blocking client never
blocks the event loop and its timeout still holds.
"""

_MESSAGE_LENGTH = 300


class HealthStatus(str, enum.Enum):
    """How healthy a check or a whole report is; the value is the lower-case JSON string."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        status: [HealthStatus][resilience_kit.health.HealthStatus] of this check alone.
        message: A short text for humans ("" when healthy unless the check says more).
        response_time_ms: How long the check took, in milliseconds (its timeout if it timed
            out); set by the checker, whatever the check returned.
        details: JSON-able facts the check adds (a pool's size, a breaker's state...).
        critical: Whether this check can make the whole report unhealthy.
    """

    status: HealthStatus
    message: str = ""
    response_time_ms: float = 0.0
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    critical: bool = True

    @property
    def healthy(self) -> bool:
        """True when the status is HEALTHY."""
        return self.status is HealthStatus.HEALTHY

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: ``status``, ``message``, ``response_time_ms``, ``critical``,
        ``details``."""
        return {
            "status": self.status.value,
            "message": self.message,
            "response_time_ms": round(self.response_time_ms, 3),
            "critical": self.critical,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The result of one probe of a [HealthChecker][resilience_kit.health.HealthChecker].

    Attributes:
        status: HEALTHY when every check is; UNHEALTHY when a critical check is unhealthy;
            DEGRADED otherwise (a non-critical check failed, or a check reported DEGRADED).
        checks: The result of each check, by name.
        timestamp: Wall-clock time (epoch seconds) the probe finished.
        version: The application version given to the checker, or ``None``.
    """

    status: HealthStatus
    checks: Mapping[str, CheckResult]
    timestamp: float
    version: str | None = None

    @property
    def http_status(self) -> int:
        """503 when UNHEALTHY, else 200 (a degraded service still serves)."""
        return 503 if self.status is HealthStatus.UNHEALTHY else 200

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the HTTP endpoints send (see the health page for an example)."""
        data: dict[str, Any] = {
            "status": self.status.value,
            "timestamp": self.timestamp,
            "checks": {name: result.to_dict() for name, result in self.checks.items()},
        }
        if self.version is not None:
            data["version"] = self.version
        return data


def overall(results: Mapping[str, CheckResult]) -> HealthStatus:
    """The status of a report made of ``results``."""
    status = HealthStatus.HEALTHY
    for result in results.values():
        if result.status is HealthStatus.HEALTHY:
            continue
        if result.status is HealthStatus.UNHEALTHY and result.critical:
            return HealthStatus.UNHEALTHY
        status = HealthStatus.DEGRADED
    return status


_checkers: weakref.WeakSet[HealthChecker] = weakref.WeakSet()
_checkers_lock = threading.Lock()


def checkers() -> list[HealthChecker]:
    """Every live [HealthChecker][resilience_kit.health.HealthChecker] (the metrics read them)."""
    with _checkers_lock:
        return list(_checkers)


class HealthChecker:
    """Named checks run concurrently, each under its own timeout, with a short result cache.

    Args:
        checks: Check callables by name (see [Check][resilience_kit.health.Check]).
        timeout: Seconds each check may take before it counts as unhealthy (> 0).
        timeouts: Per-check overrides of ``timeout``, by check name.
        critical: Names of the checks whose failure makes the service unhealthy. ``None``
            makes every check critical; a failing check outside it only degrades the report.
        cache_ttl: Seconds a report is reused before the checks run again (>= 0; 0 runs them
            on every probe). Probes arriving while a run is in progress share that run.
        version: Your application's version, shown in the report.
        clock: Where time is read (the process's default clock if ``None``).

    Raises:
        ConfigurationError: a bad timeout or TTL, a check that is not callable, or a name in
            ``critical`` or ``timeouts`` that is not a check.

    A sync check that hangs keeps its worker thread busy: until it returns, later probes report
    it unhealthy ("still running") at once instead of starting another thread behind it.
    """

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        timeout: float = 5.0,
        timeouts: Mapping[str, float] | None = None,
        critical: Iterable[str] | None = None,
        cache_ttl: float = 1.0,
        version: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._checks = dict(checks)
        for name, check in self._checks.items():
            if not isinstance(name, str) or not callable(check):
                raise ConfigurationError(
                    f"checks must map names to callables, got {name!r}: {check!r}",
                    parameter="checks",
                    value=check,
                )
        self._timeout = check_number("timeout", timeout, minimum=0, min_inclusive=False)
        self._timeouts = {
            name: check_number(f"timeouts[{name!r}]", value, minimum=0, min_inclusive=False)
            for name, value in (timeouts or {}).items()
        }
        self._critical = frozenset(self._checks if critical is None else critical)
        for parameter, names in (("critical", self._critical), ("timeouts", self._timeouts)):
            unknown = sorted(set(names) - set(self._checks))
            if unknown:
                raise ConfigurationError(
                    f"{parameter} must name checks among {sorted(self._checks)}, got {unknown}",
                    parameter=parameter,
                    value=unknown,
                )
        self._cache_ttl = check_number("cache_ttl", cache_ttl, minimum=0)
        self._version = version
        self._clock = clock
        self._async = {name: is_async_callable(check) for name, check in self._checks.items()}
        self._cached: dict[bool, tuple[float, HealthReport]] = {}
        self._running: dict[bool, tuple[asyncio.AbstractEventLoop, asyncio.Task[HealthReport]]] = {}
        self._busy_threads: dict[str, tuple[float, concurrent.futures.Future[Any]]] = {}
        self._lock = threading.Lock()
        self._last: HealthReport | None = None
        self._latest: dict[str, tuple[float, CheckResult]] = {}
        with _checkers_lock:
            _checkers.add(self)

    @property
    def names(self) -> tuple[str, ...]:
        """The check names, in the order given."""
        return tuple(self._checks)

    @property
    def critical(self) -> frozenset[str]:
        """The names of the critical checks."""
        return self._critical

    @property
    def last_report(self) -> HealthReport | None:
        """The latest report of
        [check_all][resilience_kit.health.HealthChecker.check_all], or ``None`` before any."""
        return self._last

    def last_results(self) -> dict[str, CheckResult]:
        """The most recent result of each check that has run, from any probe (metrics read
        this: a scrape never runs a check)."""
        return {name: result for name, (_, result) in self._latest.items()}

    def _stamped_results(self) -> dict[str, tuple[float, CheckResult]]:
        """[last_results][resilience_kit.health.HealthChecker.last_results] with the time of
        each (for the metrics, which take the newest result of a name across checkers)."""
        return dict(self._latest)

    def _now(self) -> float:
        return (self._clock or default_clock()).monotonic()

    def _wall(self) -> float:
        return (self._clock or default_clock()).wall()

    async def check_all(self) -> HealthReport:
        """Run every check (or reuse a report younger than ``cache_ttl``) and report."""
        return await self._probe(critical_only=False)

    async def readiness(self) -> HealthReport:
        """Whether the service can take traffic: only the critical checks run.

        A non-critical dependency cannot make the service unready, so it is not probed here.
        """
        return await self._probe(critical_only=True)

    def liveness(self) -> HealthReport:
        """Whether the process is alive: always HEALTHY, touching no dependency.

        A liveness probe that checked dependencies would have every pod restarted when a
        shared database is down, which cures nothing. Answering at all is the proof of life.
        """
        return HealthReport(HealthStatus.HEALTHY, MappingProxyType({}), self._wall(), self._version)

    def check_all_sync(self) -> HealthReport:
        """[check_all][resilience_kit.health.HealthChecker.check_all] for code without an event
        loop (WSGI); async checks then run on a loop of their own, so give them clients that
        are not bound to another loop."""
        return asyncio.run(self.check_all())

    def readiness_sync(self) -> HealthReport:
        """[readiness][resilience_kit.health.HealthChecker.readiness] for code without an
        event loop."""
        return asyncio.run(self.readiness())

    async def _probe(self, *, critical_only: bool) -> HealthReport:
        cached = self._cached.get(critical_only)
        if cached is not None and self._now() - cached[0] < self._cache_ttl:
            return cached[1]
        loop = asyncio.get_running_loop()
        running = self._running.get(critical_only)
        if running is None or running[0] is not loop or running[1].done():
            # A task of its own, not the caller's: a probe whose client goes away (and is
            # cancelled) leaves the run going for the other probes waiting on it.
            task = loop.create_task(self._run_and_keep(critical_only))
            self._running[critical_only] = running = (loop, task)
        report: HealthReport = await asyncio.shield(running[1])
        return report

    async def _run_and_keep(self, critical_only: bool) -> HealthReport:
        report = await self._run(critical_only)
        self._cached[critical_only] = (self._now(), report)
        self._latest.update((name, (report.timestamp, r)) for name, r in report.checks.items())
        if not critical_only:
            self._last = report
        return report

    async def _run(self, critical_only: bool) -> HealthReport:
        names = [n for n in self._checks if not critical_only or n in self._critical]
        results = await asyncio.gather(*(self._one(name) for name in names))
        checks = MappingProxyType(dict(zip(names, results, strict=True)))
        return HealthReport(overall(checks), checks, self._wall(), self._version)

    async def _one(self, name: str) -> CheckResult:
        critical = name in self._critical
        timeout = self._timeouts.get(name, self._timeout)
        started = time.perf_counter()
        try:
            if self._async[name]:
                value = await asyncio.wait_for(self._checks[name](), timeout)
            else:
                value = await self._in_thread(name, timeout, started)
                if inspect.isawaitable(value):  # a plain function that returned a coroutine
                    left = timeout - (time.perf_counter() - started)
                    value = await asyncio.wait_for(_awaited(value), max(left, 0.0))
        except (asyncio.TimeoutError, TimeoutError):
            message = f"timed out after {timeout:g}s"
            return CheckResult(HealthStatus.UNHEALTHY, message, timeout * 1000, critical=critical)
        except _StillRunning as busy:
            return CheckResult(
                HealthStatus.UNHEALTHY, str(busy), _elapsed_ms(started), critical=critical
            )
        except Exception as error:
            message = redact(f"{type(error).__name__}: {error}", max_length=_MESSAGE_LENGTH)
            return CheckResult(
                HealthStatus.UNHEALTHY, message, _elapsed_ms(started), critical=critical
            )
        elapsed = _elapsed_ms(started)
        if isinstance(value, CheckResult):
            return CheckResult(
                value.status,
                value.message,
                elapsed,
                MappingProxyType(dict(value.details)),
                critical,
            )
        if value:
            return CheckResult(HealthStatus.HEALTHY, "", elapsed, critical=critical)
        return CheckResult(
            HealthStatus.UNHEALTHY, f"check returned {value!r}", elapsed, critical=critical
        )

    async def _in_thread(self, name: str, timeout: float, started: float) -> Any:
        with self._lock:
            busy = self._busy_threads.get(name)
            if busy is not None and not busy[1].done():
                raise _StillRunning(
                    f"previous run still running after {time.perf_counter() - busy[0]:.1f}s"
                )
            future = _in_daemon_thread(self._checks[name])
            self._busy_threads[name] = (started, future)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class _StillRunning(Exception):
    """A sync check's previous run has not returned yet."""


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _in_daemon_thread(fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
    # A daemon thread per run, not a pool: a check that never returns must not hold up the
    # interpreter's exit (pool threads are joined at exit) nor take a thread of the loop's
    # default executor, which the application uses for its own blocking work. The checker
    # starts at most one per check at a time.
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=run, name="resilience_kit-health", daemon=True).start()
    return future
