"""HealthChecker: concurrent checks with their own timeouts, criticality, the cache, the report."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience_kit import CircuitBreaker, ConfigurationError
from resilience_kit.health import (
    CheckResult,
    HealthChecker,
    HealthReport,
    HealthStatus,
    check_breaker,
    check_callable,
    check_redis,
    check_sqlalchemy,
    checkers,
)
from resilience_kit.testing import FakeClock


def healthy() -> bool:
    return True


async def sleeper(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event a hung sync check waits on; set at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


async def test_checks_run_concurrently() -> None:
    checker = HealthChecker(
        {f"c{i}": check_callable(lambda: sleeper(0.3)) for i in range(5)}, cache_ttl=0
    )
    started = time.perf_counter()
    report = await checker.check_all()
    elapsed = time.perf_counter() - started
    assert report.status is HealthStatus.HEALTHY
    assert elapsed < 1.0, "five 0.3 s checks in sequence would take 1.5 s"
    assert all(r.response_time_ms >= 290 for r in report.checks.values())


async def test_a_hung_async_check_times_out_alone() -> None:
    never = asyncio.Event()

    async def hung() -> bool:
        await never.wait()
        return True

    checker = HealthChecker(
        {"hung": hung, "fast": healthy, "quick_async": check_callable(lambda: sleeper(0))},
        timeout=5.0,
        timeouts={"hung": 0.2},
        cache_ttl=0,
    )
    started = time.perf_counter()
    report = await checker.check_all()
    elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 1.5
    hung_result = report.checks["hung"]
    assert hung_result.status is HealthStatus.UNHEALTHY
    assert hung_result.message == "timed out after 0.2s"
    assert hung_result.response_time_ms == pytest.approx(200)
    assert report.checks["fast"].healthy
    assert report.checks["fast"].response_time_ms < 150
    assert report.checks["quick_async"].response_time_ms < 150
    assert report.status is HealthStatus.UNHEALTHY
    assert report.http_status == 503


async def test_a_hung_sync_check_holds_one_thread_and_is_reported_at_once(
    gate: threading.Event,
) -> None:
    runs = []

    def blocking() -> bool:
        runs.append(1)
        gate.wait()
        return True

    checker = HealthChecker({"blocking": blocking, "fast": healthy}, timeout=0.2, cache_ttl=0)
    first = await checker.check_all()
    assert first.checks["blocking"].message == "timed out after 0.2s"
    threads_before = threading.active_count()
    started = time.perf_counter()
    second = await checker.check_all()
    assert time.perf_counter() - started < 0.15, "the second probe must not wait again"
    assert second.checks["blocking"].status is HealthStatus.UNHEALTHY
    assert second.checks["blocking"].message.startswith("previous run still running after")
    assert threading.active_count() == threads_before
    assert len(runs) == 1
    gate.set()
    for _ in range(100):
        third = await checker.check_all()
        if third.checks["blocking"].healthy:
            break
        await asyncio.sleep(0.01)
    assert third.checks["blocking"].healthy
    assert len(runs) == 2


async def test_a_sync_check_does_not_block_the_event_loop() -> None:
    def slow() -> bool:
        time.sleep(0.3)
        return True

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    report = await HealthChecker({"slow": slow}).check_all()
    task.cancel()
    assert report.checks["slow"].healthy
    assert ticks >= 10


async def test_critical_and_non_critical_checks() -> None:
    def down() -> bool:
        raise ConnectionError("refused")

    degraded = HealthChecker({"db": healthy, "cache": down}, critical=["db"], cache_ttl=0)
    report = await degraded.check_all()
    assert report.status is HealthStatus.DEGRADED
    assert report.http_status == 200
    assert report.checks["cache"].critical is False
    assert report.checks["cache"].message == "ConnectionError: refused"

    unhealthy = HealthChecker({"db": down, "cache": healthy}, critical=["db"], cache_ttl=0)
    assert (await unhealthy.check_all()).status is HealthStatus.UNHEALTHY

    every = HealthChecker({"db": healthy, "cache": down}, cache_ttl=0)
    assert (await every.check_all()).status is HealthStatus.UNHEALTHY


async def test_a_check_may_report_degraded_itself() -> None:
    def lagging() -> CheckResult:
        return CheckResult(HealthStatus.DEGRADED, "replica lag 12s", 999.0, {"lag": 12})

    report = await HealthChecker({"replica": lagging}).check_all()
    result = report.checks["replica"]
    assert report.status is HealthStatus.DEGRADED
    assert result.message == "replica lag 12s"
    assert result.details == {"lag": 12}
    assert result.response_time_ms < 999.0, "the checker measures the time, not the check"


async def test_falsy_results_and_error_messages_are_redacted() -> None:
    def leaky() -> bool:
        raise RuntimeError("cannot reach postgresql://app:s3cret@db.internal/prod")

    report = await HealthChecker({"falsy": lambda: 0, "leaky": leaky}).check_all()
    assert report.checks["falsy"].message == "check returned 0"
    assert "s3cret" not in report.checks["leaky"].message
    assert report.checks["leaky"].message.startswith("RuntimeError: cannot reach postgresql://")


async def test_reports_are_cached_for_the_ttl() -> None:
    clock = FakeClock()
    calls = []
    checker = HealthChecker({"a": lambda: calls.append(1) or True}, cache_ttl=2.0, clock=clock)
    first = await checker.check_all()
    clock.advance(1.9)
    assert await checker.check_all() is first
    assert len(calls) == 1
    clock.advance(0.2)
    assert await checker.check_all() is not first
    assert len(calls) == 2


async def test_concurrent_probes_share_one_run() -> None:
    calls = []

    async def counted() -> bool:
        calls.append(1)
        await asyncio.sleep(0.05)
        return True

    checker = HealthChecker({"a": counted}, cache_ttl=0)
    reports = await asyncio.gather(*(checker.check_all() for _ in range(50)))
    assert len(calls) == 1
    assert all(report is reports[0] for report in reports)


async def test_readiness_runs_only_critical_checks_and_liveness_none() -> None:
    calls: list[str] = []

    def probe(name: str, ok: bool = True) -> object:
        def check() -> bool:
            calls.append(name)
            return ok

        return check

    checker = HealthChecker(
        {"db": probe("db"), "search": probe("search", ok=False)},
        critical=["db"],
        version="1.2.3",
    )
    ready = await checker.readiness()
    assert list(ready.checks) == ["db"]
    assert ready.status is HealthStatus.HEALTHY
    assert calls == ["db"]
    live = checker.liveness()
    assert live.status is HealthStatus.HEALTHY
    assert live.checks == {}
    assert live.version == "1.2.3"
    assert calls == ["db"]
    full = await checker.check_all()
    assert full.status is HealthStatus.DEGRADED
    assert checker.last_report is full
    assert checker.last_results()["search"].status is HealthStatus.UNHEALTHY


def test_sync_entry_points() -> None:
    checker = HealthChecker({"a": healthy, "b": check_callable(lambda: sleeper(0))})
    assert checker.check_all_sync().status is HealthStatus.HEALTHY
    assert checker.readiness_sync().status is HealthStatus.HEALTHY


async def test_report_json_shape_and_frozen_values() -> None:
    checker = HealthChecker({"a": healthy}, version="2.0")
    report = await checker.check_all()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["status"] == "healthy"
    assert data["version"] == "2.0"
    assert set(data["checks"]["a"]) == {
        "status",
        "message",
        "response_time_ms",
        "critical",
        "details",
    }
    assert isinstance(data["timestamp"], float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.status = HealthStatus.UNHEALTHY  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.checks["a"].status = HealthStatus.UNHEALTHY  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.checks["b"] = report.checks["a"]  # type: ignore[index]
    assert str(HealthStatus.DEGRADED) == "degraded"
    assert HealthStatus("unhealthy") is HealthStatus.UNHEALTHY
    assert isinstance(report, HealthReport)
    assert checker in checkers()


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeouts": {"a": -1}}, "timeouts['a']"),
        ({"timeouts": {"nope": 1}}, "timeouts"),
        ({"critical": ["nope"]}, "critical"),
        ({"cache_ttl": -1}, "cache_ttl"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HealthChecker({"a": healthy}, **kwargs)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


def test_a_check_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="checks must map names to callables"):
        HealthChecker({"a": "SELECT 1"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="fn must be a callable"):
        check_callable(42)  # type: ignore[arg-type]


@pytest.mark.usefixtures("breakers")
async def test_check_breaker_follows_the_state() -> None:
    breaker = CircuitBreaker("health-unit-breaker", failure_threshold=1, recovery_timeout=30)
    checker = HealthChecker({"upstream": check_breaker(breaker)}, cache_ttl=0)
    closed = await checker.check_all()
    assert closed.status is HealthStatus.HEALTHY
    assert closed.checks["upstream"].details["state"] == "CLOSED"
    breaker.force_open()
    opened = (await checker.check_all()).checks["upstream"]
    assert opened.status is HealthStatus.UNHEALTHY
    assert opened.message == "circuit 'health-unit-breaker' is FORCED_OPEN"
    breaker.disable()
    assert (await checker.check_all()).status is HealthStatus.HEALTHY
    breaker.reset()
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    failed = (await checker.check_all()).checks["upstream"]
    assert failed.details["state"] == "OPEN"
    assert failed.details["retry_after"] == pytest.approx(30, abs=1)
    assert failed.details["total_failures"] == 1


async def test_check_callable_sync_and_async() -> None:
    async def no() -> None:
        return None

    checker = HealthChecker(
        {"sync": check_callable(lambda: "yes"), "async": check_callable(no)}, cache_ttl=0
    )
    report = await checker.check_all()
    assert report.checks["sync"].healthy
    assert report.checks["async"].status is HealthStatus.UNHEALTHY


async def test_check_sqlalchemy_on_sqlite() -> None:
    import sqlalchemy as sa

    # NullPool: the check's worker thread closes its connection (a thread-bound SQLite pool
    # would leave it open to the garbage collector).
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.NullPool)
    try:
        report = await HealthChecker({"db": check_sqlalchemy(engine)}).check_all()
        assert report.checks["db"].healthy
        assert report.checks["db"].details["pool"] == type(engine.pool).__name__
        broken = HealthChecker({"db": check_sqlalchemy(engine, query="SELECT nope FROM nothing")})
        result = (await broken.check_all()).checks["db"]
        assert result.status is HealthStatus.UNHEALTHY
        assert "OperationalError" in result.message
    finally:
        engine.dispose()


async def test_check_sqlalchemy_pool_details_never_show_a_negative_overflow(
    tmp_path: Path,
) -> None:
    import sqlalchemy as sa

    # QueuePool.overflow() starts at -pool_size ("connections left before overflow"): the
    # details say how many overflow connections are open, as the query monitor does.
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'db'}", poolclass=sa.pool.QueuePool, pool_size=5
    )
    try:
        report = await HealthChecker({"db": check_sqlalchemy(engine)}).check_all()
        details = report.checks["db"].details
        assert (details["size"], details["checkedout"], details["overflow"]) == (5, 0, 0)
    finally:
        engine.dispose()


async def test_check_redis_with_fakeredis_sync_and_async() -> None:
    import fakeredis

    sync_client = fakeredis.FakeRedis()
    async_client = fakeredis.FakeAsyncRedis()
    sync_check = check_redis(sync_client)
    async_check = check_redis(async_client)
    assert not asyncio.iscoroutinefunction(sync_check)
    assert asyncio.iscoroutinefunction(async_check)
    report = await HealthChecker({"sync": sync_check, "async": async_check}).check_all()
    assert report.status is HealthStatus.HEALTHY
    await async_client.aclose()


async def test_a_cancelled_probe_leaves_the_shared_run_to_the_others() -> None:
    calls = []

    async def slow() -> bool:
        calls.append(1)
        await asyncio.sleep(0.1)
        return True

    checker = HealthChecker({"slow": slow}, cache_ttl=0)
    first = asyncio.create_task(checker.check_all())
    await asyncio.sleep(0.01)
    second = asyncio.create_task(checker.check_all())
    await asyncio.sleep(0.01)
    first.cancel()
    report = await second
    assert report.checks["slow"].healthy
    assert len(calls) == 1
    with pytest.raises(asyncio.CancelledError):
        await first
