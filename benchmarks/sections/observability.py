"""Metrics: the cost of one Prometheus scrape over many breakers and retry policies."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._harness import Context, Prepared, Section, SyncLoop
from benchmarks.sections._common import expect, ours

BREAKERS = 1_000
POLICIES = 20
STATEMENTS = 1_000
PREFIXES = 100

SECTION = Section(
    "observability",
    "Metrics: one Prometheus scrape",
    f"One `resilience_kit.prometheus.generate_latest(registry)` (what the integrations' "
    f"`/metrics` routes serve): the whole text a Prometheus server receives, with "
    f"{BREAKERS:,} breakers (one of them open), {POLICIES} retry policies, {PREFIXES} cache "
    f"prefixes and a query monitor "
    f"holding {STATEMENTS:,} statements (one engine: the statements are summed into its "
    "histogram, never one series each) registered. The "
    "baseline scrapes an empty registry. resilience_kit reads every breaker and policy at "
    "scrape time (nothing on the hot path); the prometheus-client row keeps the same series in "
    "labelled `Gauge`/`Counter` children that the hot path would update, and only renders them "
    "here. *3 workers*: the scraping worker also merges two other workers' snapshot files "
    "(multi-process mode). "
    "The *client's generate_latest* group renders the same collector through "
    "prometheus-client's generic writer (`start_http_server`, `make_asgi_app`).",
    order=90,
    requires=("resilience_kit.prometheus", "resilience_kit.sql", "resilience_kit.cache"),
    rounds_factor=0.2,
)

single = SECTION.group(
    "scrape_1000",
    f"Scrape, {BREAKERS:,} breakers, {PREFIXES} prefixes, {STATEMENTS:,} statements",
    SyncLoop(),
)
client = SECTION.group(
    "scrape_1000_client", f"Scrape, {BREAKERS:,} breakers, client's generate_latest", SyncLoop()
)
workers = SECTION.group(
    "scrape_1000_workers", f"Scrape, {BREAKERS:,} breakers, 3 workers", SyncLoop()
)
SECTION.target(
    "scrape_1000",
    "resilience_kit collector",
    50_000_000,
    f"a scrape of {BREAKERS:,} breakers, {PREFIXES} cache prefixes and {STATEMENTS:,} "
    "statements in under 50 ms",
)


def _registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


@single.baseline("empty registry")
def _empty(ctx: Context) -> Prepared:
    from prometheus_client import generate_latest

    registry = _registry()
    return Prepared(lambda: len(generate_latest(registry)), returns=0)


def _statements(run: int) -> tuple[Any, Any]:
    """An SQLite engine whose query monitor holds STATEMENTS distinct statements."""
    import sqlalchemy as sa

    install_query_monitor = ours("resilience_kit.sql", "install_query_monitor")
    engine = sa.create_engine("sqlite://", logging_name=f"bench-obs-{run}")
    monitor = install_query_monitor(engine, max_statements=STATEMENTS)
    with engine.connect() as connection:
        for index in range(STATEMENTS):
            connection.execute(sa.text(f"SELECT 1 AS column_{index}"))
    expect(monitor.stats().statements == STATEMENTS, f"the monitor should hold {STATEMENTS:,}")
    return engine, monitor


def _prefixes(run: int) -> list[Any]:
    """PREFIXES cached functions, each with one miss and one hit."""
    cached = ours("resilience_kit.cache", "cached")
    backend = ours("resilience_kit.cache", "MemoryBackend")()
    functions = []
    for index in range(PREFIXES):

        def load(item: int) -> int:
            return item

        function = cached(f"bench-obs-{run}-{index}", ttl=3600, backend=backend)(load)
        function(1)
        function(1)
        functions.append(function)
    return functions


def _population(ctx: Context) -> tuple[list[Any], Callable[[], None]]:
    """BREAKERS breakers (the first one open) and POLICIES policies that have run once."""
    breaker_class = ours("resilience_kit.breaker", "CircuitBreaker")
    retry = ours("resilience_kit.retry", "retry")
    run = next(ctx._names)  # unique per setup: names stay unique across cases
    built = [breaker_class(f"bench-obs-{run}-{i}") for i in range(BREAKERS)]
    for breaker in built[1:]:
        breaker.call(lambda: None)
    built[0].force_open()
    for index in range(POLICIES):
        retry("best_effort", name=f"bench-obs-{index}", attempts=1)(lambda: None)()
    engine, monitor = _statements(run)
    caches = _prefixes(run)

    def close() -> None:
        caches.clear()
        monitor.remove()
        engine.dispose()
        for breaker in built:
            breaker.unregister()
        built.clear()

    return built, close


def _ours(processes: int, *, direct: bool = True) -> Callable[[Context], Prepared]:
    def setup(ctx: Context) -> Prepared:
        from prometheus_client import generate_latest as client_generate_latest

        generate_latest = (
            ours("resilience_kit.prometheus", "generate_latest")
            if direct
            else client_generate_latest
        )
        register = ours("resilience_kit.prometheus", "register")
        unregister = ours("resilience_kit.prometheus", "unregister")
        built, close_population = _population(ctx)
        registry = _registry()
        directory = Path(tempfile.mkdtemp(prefix="rk-bench-obs-")) if processes > 1 else None
        collector = register(registry=registry, multiprocess_dir=directory, snapshot_interval=3600)
        if directory is not None:
            # Two more "workers": this process's own snapshot under live pids other than ours.
            path = directory / f"resilience_kit_{os.getpid()}.json"
            deadline = time.monotonic() + 10
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # the writer thread writes its first snapshot at once
            own = json.loads(path.read_text())
            for pid in (1, os.getppid())[: processes - 1]:
                own["pid"] = pid
                (directory / f"resilience_kit_{pid}.json").write_text(json.dumps(own))
        first = f"{built[0].name}"
        expected_open = f'breaker="{first}",state="FORCED_OPEN"}} 1.0'.encode()

        def op() -> int:
            return len(generate_latest(registry))

        def check() -> None:
            text = generate_latest(registry)
            expect(expected_open in text, "the open breaker should be in the scrape as FORCED_OPEN")
            calls = f'breaker="{built[1].name}",outcome="success"}} {float(processes)}'.encode()
            expect(calls in text, f"one success per worker should be summed ({processes})")

        def close() -> None:
            unregister(collector, registry=registry)
            close_population()
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)

        size = len(generate_latest(registry))
        return Prepared(op, returns=size, check=check, close=close)

    return setup


def _peer(ctx: Context) -> Prepared:
    from prometheus_client import Counter, Gauge, generate_latest

    registry = _registry()
    state = Gauge("pc_breaker_state", "State.", ["breaker", "state"], registry=registry)
    calls = Counter("pc_breaker_calls", "Calls.", ["breaker", "outcome"], registry=registry)
    rejected = Counter("pc_breaker_rejected_calls", "Rejected.", ["breaker"], registry=registry)
    retries = {
        figure: Counter(f"pc_retry_{figure}", "Retry.", ["policy"], registry=registry)
        for figure in ("calls", "attempts", "retries", "successes_after_retry", "exhausted")
    }
    for index in range(BREAKERS):
        name = f"peer-{index}"
        for each in ("CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED"):
            state.labels(name, each).set(1.0 if each == "CLOSED" else 0.0)
        for outcome in ("success", "failure", "ignored"):
            calls.labels(name, outcome).inc(1 if outcome == "success" else 0)
        rejected.labels(name).inc(0)
    for index in range(POLICIES):
        for counter in retries.values():
            counter.labels(f"peer-{index}").inc()
    size = len(generate_latest(registry))
    return Prepared(lambda: len(generate_latest(registry)), returns=size)


single.add("resilience_kit collector", "resilience_kit")(_ours(1))
single.add("prometheus-client metrics, same series", "prometheus_client")(_peer)
client.baseline("empty registry")(_empty)
client.add("resilience_kit collector", "resilience_kit")(_ours(1, direct=False))
workers.baseline("empty registry")(_empty)
workers.add("resilience_kit collector", "resilience_kit")(_ours(3))
