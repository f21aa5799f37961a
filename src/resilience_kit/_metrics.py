"""The figures every exporter shows, read at collection time from the primitives themselves.

Nothing here depends on prometheus-client or OpenTelemetry: a *source* is a function returning
[MetricFamily][resilience_kit.prometheus.MetricFamily] values (a name without namespace, a type,
a help text, label names and samples), and the Prometheus collector, the multi-process snapshots
and the OpenTelemetry instruments all read the same sources. The breaker, retry and health
sources are built in; another primitive (a cache, a query monitor) plugs in with
[add_source][resilience_kit.prometheus.add_source].

Reading happens only when something collects: the hot path of a breaker or a retry never
touches this module. The one exception is the transition counter, a global breaker listener
that costs nothing until a breaker changes state.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from resilience_kit.errors import ConfigurationError

__all__ = [
    "Histogram",
    "MetricFamily",
    "Source",
    "add_source",
    "collect_families",
    "enable_transition_counting",
    "remove_source",
    "source_names",
]

_logger = logging.getLogger("resilience_kit.metrics")

Kind: TypeAlias = Literal["counter", "gauge", "histogram"]
Merge: TypeAlias = Literal["sum", "max", "latest"]


@dataclass(frozen=True, slots=True)
class Histogram:
    """One histogram sample: cumulative bucket counts, their sum and count.

    Attributes:
        buckets: ``(upper bound in base units, cumulative count)`` pairs in increasing order,
            the last bound ``float("inf")``.
        sum: The sum of every observed value.
        count: How many values were observed (equal to the last bucket's count).
    """

    buckets: tuple[tuple[float, float], ...]
    sum: float
    count: float


@dataclass(slots=True)
class MetricFamily:
    """A named figure and its samples, as a source returns it.

    Attributes:
        name: The name without the namespace, in base units (``_seconds``); a counter's name
            without its ``_total`` suffix (the exporters add it).
        kind: ``"counter"``, ``"gauge"`` or ``"histogram"``.
        help: One line saying what it measures.
        labels: Label names. Keep their values bounded: names of breakers, policies, prefixes,
            engines, never keys, SQL text or user input.
        samples: ``(label values, value)`` pairs; the value is a
            [Histogram][resilience_kit.prometheus.Histogram] for a histogram.
        merge: How the snapshots of several worker processes combine: ``"sum"`` (counters,
            histograms, and gauges that add up such as pool sizes; the last snapshot of a worker
            that has exited still counts), ``"max"`` (gauges of live workers: 1 if any worker is
            in that state) or ``"latest"`` (the most recent snapshot's value).
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], Any]] = field(default_factory=list)
    merge: Merge = "sum"

    def add(self, value: float | Histogram, *label_values: str) -> None:
        """Append one sample (label values in the order of ``labels``)."""
        self.samples.append((label_values, value))


Source: TypeAlias = Callable[[], Iterable[MetricFamily]]
"""A function returning the current families of one primitive (called at every collection)."""

_STATES = ("CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED")


class _TransitionCounter:
    """Counts every breaker's transitions by the state entered (a global breaker listener)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        self.enabled = False

    def on_state_change(self, breaker: Any, old: Any, new: Any) -> None:
        key = (breaker.name, str(new))
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self.lock:
            return dict(self.counts)


_transitions = _TransitionCounter()


def enable_transition_counting() -> None:
    """Start counting breaker transitions (once per process; later calls do nothing)."""
    with _transitions.lock:
        if not _transitions.enabled:
            from resilience_kit.breaker import add_global_listener

            add_global_listener(_transitions)
            _transitions.enabled = True


def breaker_families() -> list[MetricFamily]:
    """State (one sample per state, 0 or 1), calls by outcome, rejections and transitions.

    Nine samples per breaker, plus one per state it has ever entered: a thousand breakers make
    a scrape of about nine thousand lines.
    """
    from resilience_kit.breaker import breakers

    state = MetricFamily(
        "breaker_state",
        "gauge",
        "1 for the state the circuit breaker is in, 0 for the others.",
        ("breaker", "state"),
        merge="max",
    )
    calls = MetricFamily(
        "breaker_calls",
        "counter",
        "Calls that ran through the breaker, by outcome (success, failure, ignored).",
        ("breaker", "outcome"),
    )
    rejected = MetricFamily(
        "breaker_rejected_calls", "counter", "Calls rejected without running.", ("breaker",)
    )
    transitions = MetricFamily(
        "breaker_transitions",
        "counter",
        "Transitions of the breaker, by the state entered.",
        ("breaker", "to_state"),
    )
    from resilience_kit.breaker._stats import totals

    counted = _transitions.snapshot()
    # Nine samples a breaker, a thousand breakers: appended directly, not through add().
    state_sample, call_sample = state.samples.append, calls.samples.append
    rejected_sample = rejected.samples.append
    for name, breaker in sorted(breakers().items()):
        current = str(breaker.state)  # an OPEN breaker past its timeout reports HALF_OPEN
        successes, failures, rejections, unrecorded = totals(breaker)
        for each in _STATES:
            state_sample(((name, each), 1.0 if each == current else 0.0))
            entered = counted.get((name, each))
            if entered:  # only transitions that happened: most breakers never change state
                transitions.add(float(entered), name, each)
        call_sample(((name, "success"), float(successes)))
        call_sample(((name, "failure"), float(failures)))
        call_sample(((name, "ignored"), float(unrecorded)))
        rejected_sample(((name,), float(rejections)))
    return [state, calls, rejected, transitions]


_RETRY_FIGURES = (
    ("calls", "calls", "Calls of functions decorated with the retry policy."),
    ("attempts", "attempts", "Attempts made, first attempts included."),
    ("retries", "retries", "Attempts after the first."),
    ("successes_after_retry", "successes_after_retry", "Calls that succeeded after a retry."),
    ("exhausted", "exhausted", "Calls that ended with no attempt or time left."),
)


def retry_families() -> list[MetricFamily]:
    """Calls, attempts, retries, successes after a retry and exhaustion, per policy name."""
    families = [
        MetricFamily(f"retry_{name}", "counter", text, ("policy",))
        for name, _, text in _RETRY_FIGURES
    ]
    # Nothing decorated yet if the retry layer was never imported: do not import it (and
    # tenacity) for a scrape.
    module = sys.modules.get("resilience_kit._retry.stats")
    if module is None:
        return families
    for policy, stats in sorted(module.retry_stats().items()):
        for family, (_, attribute, _) in zip(families, _RETRY_FIGURES, strict=True):
            family.add(float(getattr(stats, attribute)), policy)
    return families


_HEALTH_STATES = ("healthy", "degraded", "unhealthy")


def health_families() -> list[MetricFamily]:
    """The latest result of each health check (a scrape never runs a check)."""
    status = MetricFamily(
        "health_check_status",
        "gauge",
        "1 for the status of the check's latest result, 0 for the others.",
        ("check", "status"),
        merge="latest",
    )
    response = MetricFamily(
        "health_check_response_time_seconds",
        "gauge",
        "How long the check's latest run took.",
        ("check",),
        merge="latest",
    )
    overall = MetricFamily(
        "health_status",
        "gauge",
        "1 for the status of the latest full health report, 0 for the others.",
        ("status",),
        merge="latest",
    )
    module = sys.modules.get("resilience_kit.health")
    if module is None:
        return [status, response, overall]
    stamped: dict[str, tuple[float, Any]] = {}
    report = None
    for checker in module.checkers():
        for name, (when, result) in checker._stamped_results().items():
            if name not in stamped or when > stamped[name][0]:
                stamped[name] = (when, result)
        last = checker.last_report
        if last is not None and (report is None or last.timestamp > report.timestamp):
            report = last
    for name, (_, result) in sorted(stamped.items()):
        for each in _HEALTH_STATES:
            status.add(1.0 if result.status.value == each else 0.0, name, each)
        response.add(result.response_time_ms / 1000, name)
    if report is not None:
        for each in _HEALTH_STATES:
            overall.add(1.0 if report.status.value == each else 0.0, each)
    return [status, response, overall]


_CACHE_FIGURES = (
    ("cache_hits", "hits", "Calls answered from the cache with a fresh value."),
    ("cache_misses", "misses", "Calls that ran the function (or waited for the caller that did)."),
    ("cache_errors", "errors", "Backend failures and undecodable entries, each taken as a miss."),
    (
        "cache_stale_hits",
        "stale",
        "Calls answered with a stale value while one caller refreshed it.",
    ),
)


def cache_families() -> list[MetricFamily]:
    """Hits, misses, errors and stale serves per cache prefix, from ``cache_stats()``."""
    families = [
        MetricFamily(name, "counter", text, ("prefix",)) for name, _, text in _CACHE_FIGURES
    ]
    # Nothing cached if the cache module was never imported: do not import it for a scrape.
    module = sys.modules.get("resilience_kit.cache")
    stats = getattr(module, "cache_stats", None)
    if stats is None:
        return families
    for prefix, figures in sorted(stats().prefixes.items()):
        for family, (_, attribute, _) in zip(families, _CACHE_FIGURES, strict=True):
            family.add(float(getattr(figures, attribute)), prefix)
    return families


def _sql_families() -> list[MetricFamily]:
    from resilience_kit._sql_metrics import sql_families

    return sql_families()


_sources: dict[str, Source] = {
    "breakers": breaker_families,
    "retry": retry_families,
    "cache": cache_families,
    "sql": _sql_families,
    "health": health_families,
}
_sources_lock = threading.Lock()


def add_source(name: str, source: Source, *, replace: bool = False) -> None:
    """Add a source of figures that every exporter reads from now on.

    Args:
        name: A unique name for the source (``"cache"``, ``"sql"``...).
        source: A function returning [MetricFamily][resilience_kit.prometheus.MetricFamily]
            values; it is called at each collection and must not do I/O.
        replace: Replace a source already added under ``name`` instead of refusing it.

    Raises:
        ConfigurationError: ``name`` is taken and ``replace`` is false, or ``source`` is not
            callable.
    """
    if not callable(source):
        raise ConfigurationError(
            f"source must be callable, got {source!r}", parameter="source", value=source
        )
    with _sources_lock:
        if name in _sources and not replace:
            raise ConfigurationError(
                f"name must not be a source already added, got {name!r} "
                "(pass replace=True to replace it)",
                parameter="name",
                value=name,
            )
        _sources[name] = source


def remove_source(name: str) -> None:
    """Remove the source added under ``name`` (nothing happens if there is none)."""
    with _sources_lock:
        _sources.pop(name, None)


def source_names() -> tuple[str, ...]:
    """The names of the sources, built-in ones first."""
    with _sources_lock:
        return tuple(_sources)


def collect_families(only: Iterable[str] | None = None) -> list[MetricFamily]:
    """Every family of every source (or of the sources named in ``only``).

    A source that raises is logged and left out: a broken source never breaks a scrape. Its
    ``metrics_source_up`` sample says so.
    """
    with _sources_lock:
        chosen = list(_sources.items())
    if only is not None:
        wanted = set(only)
        chosen = [(name, source) for name, source in chosen if name in wanted]
    up = MetricFamily(
        "metrics_source_up",
        "gauge",
        "1 if the source's figures could be read at this collection, 0 if it failed.",
        ("source",),
        merge="max",
    )
    families: list[MetricFamily] = []
    for name, source in chosen:
        try:
            produced = list(source())
        except Exception:
            _logger.exception("metrics source %r failed; its figures are left out", name)
            up.add(0.0, name)
        else:
            families.extend(produced)
            up.add(1.0, name)
    families.append(up)
    return families
