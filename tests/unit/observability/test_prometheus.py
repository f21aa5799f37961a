"""The Prometheus collector: what a scrape shows, read at scrape time only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from resilience_kit import CircuitBreaker, CircuitOpenError, ConfigurationError
from resilience_kit import prometheus as rk_prometheus
from resilience_kit._snapshots import _encode
from resilience_kit.health import HealthChecker, check_breaker
from resilience_kit.prometheus import Histogram, MetricFamily
from resilience_kit.retry import reset_retry_stats, retry
from resilience_kit.testing import FakeClock, no_waits

pytestmark = pytest.mark.usefixtures("breakers")


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by prometheus-client's own text parser."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def test_breaker_state_calls_rejections_and_transitions(registry: CollectorRegistry) -> None:
    breaker = CircuitBreaker("prom-payments", failure_threshold=2, recovery_timeout=60)
    breaker.call(lambda: 1)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: 1)
    samples = scrape(registry)
    states = {
        state: value(samples, "resilience_kit_breaker_state", breaker="prom-payments", state=state)
        for state in ("CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED")
    }
    assert states == {"CLOSED": 0, "OPEN": 1, "HALF_OPEN": 0, "FORCED_OPEN": 0, "DISABLED": 0}
    calls = "resilience_kit_breaker_calls_total"
    assert value(samples, calls, breaker="prom-payments", outcome="success") == 1
    assert value(samples, calls, breaker="prom-payments", outcome="failure") == 2
    assert value(samples, calls, breaker="prom-payments", outcome="ignored") == 0
    assert (
        value(samples, "resilience_kit_breaker_rejected_calls_total", breaker="prom-payments") == 1
    )
    transitions = "resilience_kit_breaker_transitions_total"
    assert value(samples, transitions, breaker="prom-payments", to_state="OPEN") == 1
    breaker.reset()
    breaker.force_open()
    breaker.reset()
    samples = scrape(registry)
    assert value(samples, transitions, breaker="prom-payments", to_state="CLOSED") == 2
    assert value(samples, transitions, breaker="prom-payments", to_state="FORCED_OPEN") == 1


def test_a_scrape_agrees_with_stats_for_every_breaker(
    registry: CollectorRegistry, fake_clock: FakeClock
) -> None:
    """The scrape reads each breaker's totals without a full `stats()` snapshot: the figures
    must still be the same: after a reset, for an OPEN breaker past its timeout (HALF_OPEN) and
    with calls in every outcome."""
    made = [
        CircuitBreaker(
            f"prom-agree-{i}",
            failure_threshold=2,
            recovery_timeout=30,
            ignore=(KeyError,),
            clock=fake_clock,
        )
        for i in range(4)
    ]
    for index, breaker in enumerate(made):
        for _ in range(index + 1):
            breaker.call(lambda: None)
        with pytest.raises(KeyError):
            breaker.call({}.__getitem__, "missing")
        for _ in range(index % 3):
            with pytest.raises(ZeroDivisionError):
                breaker.call(lambda: 1 / 0)
    made[0].reset()
    made[0].call(lambda: None)
    with pytest.raises(CircuitOpenError):
        made[2].call(lambda: None)  # OPEN: one rejection
    fake_clock.advance(31)  # made[2] is now HALF_OPEN
    samples = scrape(registry)
    calls = "resilience_kit_breaker_calls_total"
    for breaker in made:
        stats = breaker.stats()
        name = breaker.name
        ignored = stats.total_calls - stats.total_rejected - stats.total_successes
        ignored -= stats.total_failures
        assert value(samples, calls, breaker=name, outcome="success") == stats.total_successes
        assert value(samples, calls, breaker=name, outcome="failure") == stats.total_failures
        assert value(samples, calls, breaker=name, outcome="ignored") == ignored
        rejected = "resilience_kit_breaker_rejected_calls_total"
        assert value(samples, rejected, breaker=name) == stats.total_rejected
        state = "resilience_kit_breaker_state"
        assert value(samples, state, breaker=name, state=str(stats.state)) == 1
    assert str(made[2].stats().state) == "HALF_OPEN"
    assert made[2].stats().total_rejected == 1


def test_ignored_errors_are_their_own_outcome(registry: CollectorRegistry) -> None:
    breaker = CircuitBreaker("prom-ignored", ignore=(KeyError,))
    with pytest.raises(KeyError):
        breaker.call({}.__getitem__, "missing")
    samples = scrape(registry)
    calls = "resilience_kit_breaker_calls_total"
    assert value(samples, calls, breaker="prom-ignored", outcome="ignored") == 1
    assert value(samples, calls, breaker="prom-ignored", outcome="failure") == 0


def test_retry_figures_per_policy(registry: CollectorRegistry) -> None:
    reset_retry_stats()
    attempts = []

    @retry("database", name="prom-db", attempts=3, min_wait=0, max_wait=0)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 2:
            raise ConnectionError("reset")
        return "ok"

    @retry("database", name="prom-down", attempts=2, min_wait=0, max_wait=0)
    def down() -> None:
        raise ConnectionError("refused")

    with no_waits():
        flaky()
        with pytest.raises(ConnectionError):
            down()
    samples = scrape(registry)
    expected = {
        ("prom-db", "calls"): 1,
        ("prom-db", "attempts"): 2,
        ("prom-db", "retries"): 1,
        ("prom-db", "successes_after_retry"): 1,
        ("prom-db", "exhausted"): 0,
        ("prom-down", "attempts"): 2,
        ("prom-down", "exhausted"): 1,
    }
    for (policy, figure), number in expected.items():
        assert value(samples, f"resilience_kit_retry_{figure}_total", policy=policy) == number


async def test_last_health_results_without_running_a_check(registry: CollectorRegistry) -> None:
    breaker = CircuitBreaker("prom-health")
    runs = []

    def counted() -> bool:
        runs.append(1)
        return True

    checker = HealthChecker({"upstream": check_breaker(breaker), "counted": counted}, cache_ttl=0)
    labels = {dict(labels).get("check") for _, labels in scrape(registry)}
    assert "counted" not in labels, "no result before the first probe"
    breaker.force_open()
    await checker.check_all()
    samples = scrape(registry)
    scrape(registry)
    assert len(runs) == 1, "a scrape never runs a check"
    status = "resilience_kit_health_check_status"
    assert value(samples, status, check="upstream", status="unhealthy") == 1
    assert value(samples, status, check="upstream", status="healthy") == 0
    assert value(samples, status, check="counted", status="healthy") == 1
    assert value(samples, "resilience_kit_health_status", status="unhealthy") == 1
    assert value(samples, "resilience_kit_health_check_response_time_seconds", check="counted") < 1


def test_namespace_and_sources() -> None:
    registry = CollectorRegistry()
    collector = rk_prometheus.register(registry=registry, namespace="shop", sources=["breakers"])
    try:
        breaker = CircuitBreaker("prom-namespaced")
        names = {name for name, _ in scrape(registry)}
        assert "shop_breaker_state" in names
        assert not any(name.startswith("shop_retry") for name in names)
        assert not any(name.startswith("resilience_kit") for name in names)
        assert breaker.name == "prom-namespaced"
    finally:
        rk_prometheus.unregister(collector, registry=registry)
    bare = CollectorRegistry()
    collector = rk_prometheus.register(registry=bare, namespace="")
    try:
        assert any(name == "breaker_state" for name, _ in scrape(bare))
    finally:
        rk_prometheus.unregister(collector, registry=bare)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"namespace": "not valid"}, "namespace"),
        ({"namespace": "9lives"}, "namespace"),
        ({"sources": ["nope"]}, "sources"),
        ({"multiprocess_dir": "/nonexistent/resilience_kit"}, "multiprocess_dir"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        rk_prometheus.register(registry=CollectorRegistry(), **kwargs)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


def test_one_collector_per_registry(registry: CollectorRegistry) -> None:
    with pytest.raises(ConfigurationError, match="registry must not hold"):
        rk_prometheus.register(registry=registry)


def test_a_source_plugs_in_and_is_read_only_at_scrape_time(registry: CollectorRegistry) -> None:
    reads = []

    def cache_source() -> list[MetricFamily]:
        reads.append(1)
        hits = MetricFamily("cache_hits", "counter", "Cache hits.", ("prefix",))
        hits.add(7.0, "users")
        duration = MetricFamily(
            "query_duration_seconds", "histogram", "Query durations.", ("engine",)
        )
        duration.add(Histogram(((0.1, 3.0), (1.0, 5.0), (float("inf"), 6.0)), 2.5, 6.0), "main")
        return [hits, duration]

    rk_prometheus.add_source("test-cache", cache_source)
    try:
        with pytest.raises(ConfigurationError, match="already added"):
            rk_prometheus.add_source("test-cache", cache_source)
        breaker = CircuitBreaker("prom-hot-path")
        for _ in range(100):
            breaker.call(lambda: 1)
        assert reads == []
        samples = scrape(registry)
        assert reads == [1]
        assert value(samples, "resilience_kit_cache_hits_total", prefix="users") == 7
        bucket = "resilience_kit_query_duration_seconds_bucket"
        assert value(samples, bucket, engine="main", le="0.1") == 3
        assert value(samples, bucket, engine="main", le="+Inf") == 6
        assert value(samples, "resilience_kit_query_duration_seconds_sum", engine="main") == 2.5
        names = [metric.name for metric in rk_prometheus.exported_metrics()]
        assert "resilience_kit_query_duration_seconds" in names
    finally:
        rk_prometheus.remove_source("test-cache")
    assert "test-cache" not in rk_prometheus.source_names()


def test_a_broken_source_never_breaks_the_scrape(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> list[MetricFamily]:
        raise RuntimeError("boom")

    rk_prometheus.add_source("test-broken", broken)
    try:
        breaker = CircuitBreaker("prom-survivor")
        samples = scrape(registry)
        assert breaker.name == "prom-survivor"
    finally:
        rk_prometheus.remove_source("test-broken")
    assert value(samples, "resilience_kit_metrics_source_up", source="test-broken") == 0
    assert value(samples, "resilience_kit_metrics_source_up", source="breakers") == 1
    assert value(samples, "resilience_kit_breaker_state", breaker="prom-survivor", state="CLOSED")
    assert "metrics source 'test-broken' failed" in caplog.text


def test_exported_metrics_follow_the_naming_conventions() -> None:
    metrics = rk_prometheus.exported_metrics()
    names = [metric.name for metric in metrics]
    assert len(names) == len(set(names))
    for metric in metrics:
        assert metric.name.startswith("resilience_kit_")
        assert not metric.name.endswith("_total"), "counters get _total in the text format only"
        assert not metric.name.endswith(("_count", "_sum", "_bucket"))
        assert metric.help.endswith(".")
        assert "key" not in metric.labels
        assert "sql" not in metric.labels
    assert "resilience_kit_breaker_calls" in names
    calls = next(m for m in metrics if m.name == "resilience_kit_breaker_calls")
    assert calls.sample_names == ("resilience_kit_breaker_calls_total",)


def test_promtool_accepts_a_real_scrape(
    registry: CollectorRegistry, promtool: str, tmp_path: Path
) -> None:
    breaker = CircuitBreaker("prom-lint", failure_threshold=1)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)

    @retry("database", name="prom-lint", attempts=1)
    def once() -> int:
        return 1

    once()
    checker = HealthChecker({"ok": lambda: True})  # held: the metrics see live checkers only
    checker.check_all_sync()

    from resilience_kit.cache import MemoryBackend, cached

    @cached("prom-lint", ttl=60, backend=MemoryBackend())
    def user(user_id: int) -> int:
        return user_id

    user(1)
    user(1)

    sa = pytest.importorskip("sqlalchemy")
    from resilience_kit.sql import install_query_monitor

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lint.db'}", logging_name="lint")
    monitor = install_query_monitor(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")

    def histogram_source() -> list[MetricFamily]:
        family = MetricFamily("lint_duration_seconds", "histogram", "Durations.", ("engine",))
        family.add(Histogram(((0.5, 1.0), (float("inf"), 2.0)), 1.5, 2.0), "main")
        return [family]

    rk_prometheus.add_source("test-histogram", histogram_source)
    try:
        text = generate_latest(registry)
    finally:
        rk_prometheus.remove_source("test-histogram")
        monitor.remove()
        engine.dispose()
    # Every primitive is in the scrape that promtool reads.
    for series in (
        'resilience_kit_breaker_state{breaker="prom-lint"',
        'resilience_kit_retry_attempts_total{policy="prom-lint"}',
        'resilience_kit_cache_hits_total{prefix="prom-lint"} 1.0',
        'resilience_kit_db_query_duration_seconds_count{engine="lint"} 1.0',
        'resilience_kit_health_check_status{check="ok"',
    ):
        assert series.encode() in text, series
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    assert result.stdout.decode() + result.stderr.decode() == ""


def test_multiprocess_snapshots_merge(tmp_path: Path) -> None:
    """Other workers' snapshots: counters add up (an exited worker's too), gauges of live
    workers take the maximum, an exited worker's gauges no longer count."""
    registry = CollectorRegistry()
    collector = rk_prometheus.register(
        registry=registry, multiprocess_dir=tmp_path, snapshot_interval=60
    )
    try:
        breaker = CircuitBreaker("prom-mp")
        breaker.call(lambda: 1)

        def other(pid: int, live: bool, successes: float, open_: float) -> None:
            state = MetricFamily("breaker_state", "gauge", "State.", ("breaker", "state"))
            state.merge = "max"
            state.add(open_, "prom-mp", "OPEN")
            state.add(1 - open_, "prom-mp", "CLOSED")
            calls = MetricFamily("breaker_calls", "counter", "Calls.", ("breaker", "outcome"))
            calls.add(successes, "prom-mp", "success")
            strings, families = _encode([state, calls])
            data = {
                "pid": pid,
                "written": 1.0,
                "live": live,
                "strings": strings,
                "families": families,
            }
            (tmp_path / f"resilience_kit_{pid}.json").write_text(json.dumps(data))

        other(os.getppid(), True, 10, 0)  # the test runner's parent: alive
        other(2**22 + 7, True, 5, 1)  # no such process: exited without a final snapshot
        samples = scrape(registry)
        calls = "resilience_kit_breaker_calls_total"
        assert value(samples, calls, breaker="prom-mp", outcome="success") == 16
        state = "resilience_kit_breaker_state"
        assert value(samples, state, breaker="prom-mp", state="OPEN") == 0
        other(os.getppid(), True, 10, 1)
        samples = scrape(registry)
        assert value(samples, state, breaker="prom-mp", state="OPEN") == 1
        assert value(samples, state, breaker="prom-mp", state="CLOSED") == 1
        (tmp_path / "resilience_kit_garbage.json").write_text("{not json")
        assert value(scrape(registry), calls, breaker="prom-mp", outcome="success") == 16
        own = tmp_path / f"resilience_kit_{os.getpid()}.json"
        assert json.loads(own.read_text())["live"] is True
    finally:
        rk_prometheus.unregister(collector, registry=registry)
    assert json.loads(own.read_text())["live"] is False, "closing writes a final snapshot"


def test_direct_rendering_is_byte_for_byte_the_clients(registry: CollectorRegistry) -> None:
    from prometheus_client import Counter

    user_counter = Counter("shop_orders", "Orders.", ["kind"], registry=registry)
    user_counter.labels("paid").inc(3)
    odd = CircuitBreaker('prom "quoted" \\ back\nline')
    odd.call(lambda: 1)
    many = [CircuitBreaker(f"prom-render-{i}") for i in range(20)]
    many[3].force_open()

    def source() -> list[MetricFamily]:
        wide = MetricFamily(
            "render_wide", "gauge", "Three labels\\ and a\nnewline.", ("z", "a", "m")
        )
        wide.add(1e7, "z1", "a1", "m1")
        wide.add(float("nan"), "z2", "a2", "m2")
        wide.add(-2.5e-9, "z3", "a3", "m3")
        bare = MetricFamily("render_bare", "counter", "No labels.")
        bare.add(12345678.0)
        hist = MetricFamily("render_seconds", "histogram", "Durations.", ("zone", "engine"))
        buckets = ((0.005, 1.0), (2.5, 3.0), (1e7, 4.0), (float("inf"), 5.0))
        hist.add(Histogram(buckets, 3.25, 5.0), "eu", "main")
        return [wide, bare, hist]

    rk_prometheus.add_source("test-render", source)
    try:
        ours = rk_prometheus.generate_latest(registry)
        theirs = generate_latest(registry)
    finally:
        rk_prometheus.remove_source("test-render")
    # The same families, byte for byte; ours come after the registry's other collectors.
    assert sorted(ours.split(b"# HELP ")) == sorted(theirs.split(b"# HELP "))
    assert ours.startswith(b"# HELP shop_orders_total")
    assert b'breaker="prom \\"quoted\\" \\\\ back\\nline"' in ours
    assert len(many) == 20
    assert odd.name.startswith("prom")


def test_generate_latest_without_our_collector_is_the_clients() -> None:
    from prometheus_client import Gauge

    plain = CollectorRegistry()
    Gauge("alone", "Alone.", registry=plain).set(2)
    assert rk_prometheus.generate_latest(plain) == generate_latest(plain)


def test_merging_unaligned_snapshots_histograms_and_latest_values() -> None:
    from resilience_kit._snapshots import Snapshot, merge_families

    def family(name: str, merge: str, *samples: tuple[tuple[str, ...], object]) -> MetricFamily:
        kind = "histogram" if name == "hist" else "counter" if merge == "sum" else "gauge"
        made = MetricFamily(name, kind, "Help.", ("breaker",), merge=merge)  # type: ignore[arg-type]
        made.samples = list(samples)
        return made

    def hist(sum_: float, *counts: float) -> Histogram:
        return Histogram(((1.0, counts[0]), (float("inf"), counts[1])), sum_, counts[1])

    own = [
        family("calls", "sum", (("a",), 1.0), (("b",), 2.0)),
        family("state", "max", (("a",), 0.0)),
        family("health", "latest", (("a",), 1.0)),
        family("hist", "sum", (("a",), hist(1.0, 1, 2))),
    ]
    newer = Snapshot(
        11,
        written=2e10,
        alive=True,
        families=[
            family("calls", "sum", (("b",), 10.0), (("c",), 5.0)),
            family("state", "max", (("a",), 1.0)),
            family("health", "latest", (("a",), 0.0)),
            family("hist", "sum", (("a",), hist(2.0, 3, 4))),
        ],
    )
    exited = Snapshot(
        12,
        written=1.0,
        alive=False,
        families=[
            family("calls", "sum", (("a",), 100.0)),
            family("state", "max", (("z",), 1.0)),
            family("only_gauge", "max", (("a",), 1.0)),
        ],
    )
    merged = {f.name: dict(f.samples) for f in merge_families(own, [newer, exited])}
    assert merged["calls"] == {("a",): 101.0, ("b",): 12.0, ("c",): 5.0}
    assert merged["state"] == {("a",): 1.0}
    assert merged["health"] == {("a",): 0.0}, "the newest snapshot wins"
    assert merged["hist"][("a",)] == hist(3.0, 4, 6)
    assert "only_gauge" not in merged


def test_exited_workers_snapshots_are_compacted_into_one_archive(tmp_path: Path) -> None:
    from resilience_kit._snapshots import ARCHIVE, compact, merge_families, read_snapshots

    dead_pids = iter(range(2**22 + 100, 2**22 + 200))  # above any pid_max in use: no process

    def dead_worker(successes: float, *, name: str | None = None) -> str:
        pid = next(dead_pids)
        calls = MetricFamily("breaker_calls", "counter", "Calls.", ("breaker", "outcome"))
        calls.add(successes, "prom-compact", "success")
        state = MetricFamily("breaker_state", "gauge", "State.", ("breaker", "state"))
        state.merge = "max"
        state.add(1.0, "prom-compact", "OPEN")
        strings, families = _encode([calls, state])
        data = {"pid": pid, "written": 1.0, "live": False, "strings": strings, "families": families}
        file_name = name or f"resilience_kit_{pid}.json"
        (tmp_path / file_name).write_text(json.dumps(data))
        return file_name

    def total() -> dict[str, dict[tuple[str, ...], float]]:
        merged = merge_families([], read_snapshots(tmp_path))
        return {family.name: dict(family.samples) for family in merged}

    for successes in (1, 2, 3, 4):
        dead_worker(successes)
    dead_worker(10, name="resilience_kit_12345-99.json")  # a pid's previous owner, retired
    before = total()
    assert before["breaker_calls"] == {("prom-compact", "success"): 20}
    assert "breaker_state" not in before, "exited workers' gauges do not count"
    compact(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("resilience_kit_*.json")) == [ARCHIVE]
    assert total() == before
    dead_worker(5)
    late = dead_worker(6)
    compact(tmp_path)
    assert total()["breaker_calls"] == {("prom-compact", "success"): 31}
    # A crash between writing the archive and deleting what it absorbed never counts twice.
    archive = json.loads((tmp_path / ARCHIVE).read_text())
    (tmp_path / late).write_text(json.dumps({**archive, "pid": 2**22 + 300}))
    archive["absorbed"] = [late]
    (tmp_path / ARCHIVE).write_text(json.dumps(archive))
    assert total()["breaker_calls"] == {("prom-compact", "success"): 31}
    dead_worker(7)
    compact(tmp_path)
    assert total()["breaker_calls"] == {("prom-compact", "success"): 38}
    assert sorted(p.name for p in tmp_path.glob("resilience_kit_*.json")) == [ARCHIVE]


def test_cache_figures_per_prefix_from_cache_stats(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache source reads ``cache_stats()`` as API.md defines it (a stand-in module here;
    the next test uses the real package)."""
    import types
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class PrefixStats:
        hits: int = 0
        misses: int = 0
        errors: int = 0
        stale: int = 0
        hit_rate: float = 0.0

    @dataclass(frozen=True)
    class CacheStats:
        hits: int = 0
        misses: int = 0
        errors: int = 0
        stale: int = 0
        hit_rate: float = 0.0
        prefixes: dict[str, PrefixStats] = field(default_factory=dict)

    stand_in = types.ModuleType("resilience_kit.cache")
    stand_in.cache_stats = lambda: CacheStats(  # type: ignore[attr-defined]
        prefixes={"users": PrefixStats(8, 2, 1, 3, 0.8), "orders": PrefixStats(0, 4)}
    )
    monkeypatch.setitem(sys.modules, "resilience_kit.cache", stand_in)
    samples = scrape(registry)
    assert value(samples, "resilience_kit_cache_hits_total", prefix="users") == 8
    assert value(samples, "resilience_kit_cache_misses_total", prefix="users") == 2
    assert value(samples, "resilience_kit_cache_errors_total", prefix="users") == 1
    assert value(samples, "resilience_kit_cache_stale_hits_total", prefix="users") == 3
    assert value(samples, "resilience_kit_cache_misses_total", prefix="orders") == 4


def test_real_cached_functions_per_prefix(registry: CollectorRegistry) -> None:
    from resilience_kit.cache import MemoryBackend, cached, reset_cache_stats

    reset_cache_stats()
    backend = MemoryBackend()

    @cached("prom-users", ttl=60, backend=backend)
    def user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    user(1)
    user(1)
    user(1)
    user(2)
    samples = scrape(registry)
    assert value(samples, "resilience_kit_cache_hits_total", prefix="prom-users") == 2
    assert value(samples, "resilience_kit_cache_misses_total", prefix="prom-users") == 2
    assert value(samples, "resilience_kit_cache_errors_total", prefix="prom-users") == 0
    assert value(samples, "resilience_kit_cache_stale_hits_total", prefix="prom-users") == 0
