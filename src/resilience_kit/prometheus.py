"""Prometheus metrics: one collector that reads every primitive at scrape time.

```python
from prometheus_client import CollectorRegistry, generate_latest

from resilience_kit import prometheus

registry = CollectorRegistry()
prometheus.register(registry=registry)
text = generate_latest(registry)
```

Nothing on a breaker's or a retry's hot path touches Prometheus: the collector asks each
*source* for its current figures when the registry is collected (see
[add_source][resilience_kit.prometheus.add_source] to plug in another one). Needs the
``prometheus`` extra (``pip install "resilience-kit-py[prometheus]"``).
"""

from __future__ import annotations

import contextvars
import os
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resilience_kit._exposition import format_value, render
from resilience_kit._metrics import (
    Histogram,
    MetricFamily,
    Source,
    add_source,
    collect_families,
    enable_transition_counting,
    remove_source,
    source_names,
)
from resilience_kit._snapshots import SnapshotWriter, merge_families, read_snapshots
from resilience_kit._validation import check_number
from resilience_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "ExportedMetric",
    "Histogram",
    "MetricFamily",
    "ResilienceCollector",
    "Source",
    "add_source",
    "exported_metrics",
    "generate_latest",
    "register",
    "remove_source",
    "source_names",
    "unregister",
]

_NAMESPACE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or (namespace and not _NAMESPACE.fullmatch(namespace)):
        raise ConfigurationError(
            f"namespace must be empty or a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*), "
            f"got {namespace!r}",
            parameter="namespace",
            value=namespace,
        )
    return namespace


def _full_name(namespace: str, name: str) -> str:
    return f"{namespace}_{name}" if namespace else name


def _to_prometheus(family: MetricFamily, namespace: str) -> Metric:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

    name = _full_name(namespace, family.name)
    metric = Metric(name, family.help, family.kind)
    labels = family.labels
    new = tuple.__new__  # a namedtuple built without its keyword-handling constructor
    pad = (None,) * (len(Sample._fields) - 3)  # timestamp, exemplar (and native_histogram)
    samples: list[Any] = []
    if family.kind == "histogram":
        for values, value in family.samples:
            base = dict(zip(labels, values, strict=True))
            for bound, count in value.buckets:
                samples.append(Sample(f"{name}_bucket", {**base, "le": format_value(bound)}, count))
            samples.append(Sample(f"{name}_count", base, value.count))
            samples.append(Sample(f"{name}_sum", base, value.sum))
    else:
        sample_name = f"{name}_total" if family.kind == "counter" else name
        append = samples.append
        if len(labels) == 1:
            (key,) = labels
            for (first,), value in family.samples:
                append(new(Sample, (sample_name, {key: first}, value, *pad)))
        elif len(labels) == 2:
            key, other = labels
            for (first, second), value in family.samples:
                append(new(Sample, (sample_name, {key: first, other: second}, value, *pad)))
        else:
            for values, value in family.samples:
                append(
                    new(Sample, (sample_name, dict(zip(labels, values, strict=True)), value, *pad))
                )
    metric.samples = samples
    return metric


class ResilienceCollector:
    """The collector [register][resilience_kit.prometheus.register] adds to a registry.

    Each collection reads the sources (and, in multi-process mode, merges the other workers'
    snapshots); nothing is kept between scrapes.
    """

    def __init__(
        self,
        *,
        namespace: str = "resilience_kit",
        sources: Iterable[str] | None = None,
        multiprocess_dir: str | os.PathLike[str] | None = None,
        snapshot_interval: float = 5.0,
    ) -> None:
        self.namespace = _check_namespace(namespace)
        self._sources = None if sources is None else tuple(sources)
        if self._sources is not None:
            unknown = sorted(set(self._sources) - set(source_names()))
            if unknown:
                raise ConfigurationError(
                    f"sources must be among {list(source_names())}, got {unknown}",
                    parameter="sources",
                    value=unknown,
                )
        self._directory: Path | None = None
        self._writer: SnapshotWriter | None = None
        if multiprocess_dir is not None:
            directory = Path(multiprocess_dir)
            if not directory.is_dir():
                raise ConfigurationError(
                    f"multiprocess_dir must be an existing directory, got {str(directory)!r}",
                    parameter="multiprocess_dir",
                    value=str(directory),
                )
            interval = check_number(
                "snapshot_interval", snapshot_interval, minimum=0, min_inclusive=False
            )
            self._directory = directory
            self._writer = SnapshotWriter(directory, interval, self._own_families)
            self._writer.start()
        enable_transition_counting()

    @property
    def multiprocess_dir(self) -> Path | None:
        """Where the workers' snapshots are, or ``None`` in single-process mode."""
        return self._directory

    def _own_families(self) -> list[MetricFamily]:
        return collect_families(self._sources)

    def families(self) -> list[MetricFamily]:
        """The figures a scrape shows now, merged across workers in multi-process mode."""
        own = self._own_families()
        if self._directory is None:
            return own
        others = read_snapshots(self._directory, exclude_pid=os.getpid())
        return merge_families(own, others)

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus-client at each scrape."""
        if _rendering_directly.get():
            return  # generate_latest() below writes our part itself
        namespace = self.namespace
        for family in self.families():
            yield _to_prometheus(family, namespace)

    def render(self) -> str:
        """The figures a scrape shows now, in the Prometheus text format."""
        return render(self.families(), self.namespace)

    def describe(self) -> list[Metric]:
        """Nothing: registering must not read every primitive (prometheus-client would)."""
        return []

    def close(self) -> None:
        """Stop writing snapshots (a last one is written, marked final)."""
        if self._writer is not None:
            self._writer.stop(final=True)
            self._writer = None


_registered: weakref.WeakKeyDictionary[Any, ResilienceCollector] = weakref.WeakKeyDictionary()
_registered_lock = threading.Lock()


def register(
    *,
    registry: CollectorRegistry | None = None,
    namespace: str = "resilience_kit",
    sources: Iterable[str] | None = None,
    multiprocess_dir: str | os.PathLike[str] | None = None,
    snapshot_interval: float = 5.0,
) -> ResilienceCollector:
    """Add the resilience_kit collector to ``registry`` and return it.

    Args:
        registry: Where to register (prometheus-client's default ``REGISTRY`` if ``None``).
        namespace: Prefix of every metric name (``""`` for none).
        sources: Names of the sources to read (every source if ``None``; see
            [source_names][resilience_kit.prometheus.source_names]).
        multiprocess_dir: A directory shared by the worker processes of one server: each
            worker writes its figures there and the worker answering a scrape merges them. If
            ``None``, ``PROMETHEUS_MULTIPROC_DIR`` is used when set (the directory
            prometheus-client's own multiprocess mode uses; the file names do not clash).
            Call `register` in every worker (or before the fork: each child starts its own
            writer).
        snapshot_interval: Seconds between two snapshots of a worker (multi-process only): how
            stale another worker's figures may be in a scrape.

    Raises:
        ConfigurationError: a bad namespace, source or interval, a directory that does not
            exist, or a collector already registered in ``registry``.
    """
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    if multiprocess_dir is None:
        multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    with _registered_lock:
        if registry in _registered:
            raise ConfigurationError(
                "registry must not hold a resilience_kit collector already "
                "(unregister the one register() returned first)",
                parameter="registry",
                value=registry,
            )
        collector = ResilienceCollector(
            namespace=namespace,
            sources=sources,
            multiprocess_dir=multiprocess_dir,
            snapshot_interval=snapshot_interval,
        )
        registry.register(collector)
        _registered[registry] = collector
    return collector


def unregister(
    collector: ResilienceCollector, *, registry: CollectorRegistry | None = None
) -> None:
    """Remove ``collector`` from ``registry`` (the default one if ``None``) and close it."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    with _registered_lock:
        if _registered.get(registry) is collector:
            del _registered[registry]
            registry.unregister(collector)
    collector.close()


_rendering_directly = contextvars.ContextVar("rk_rendering_directly", default=False)


def generate_latest(registry: CollectorRegistry | None = None) -> bytes:
    """prometheus-client's ``generate_latest``, several times faster on our part of the scrape.

    The registry's other collectors are rendered by prometheus-client as usual; the
    resilience_kit collector registered in it writes its own lines (the same bytes the client
    would write, without its per-line overhead). The routes in
    [resilience_kit.integrations][resilience_kit.integrations] serve this.
    """
    from prometheus_client import generate_latest as client_generate_latest

    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    collector = _registered.get(registry)
    if collector is None:
        return client_generate_latest(registry)
    token = _rendering_directly.set(True)
    try:
        rest = client_generate_latest(registry)
    finally:
        _rendering_directly.reset(token)
    return rest + collector.render().encode()


@dataclass(frozen=True, slots=True)
class ExportedMetric:
    """One metric the collector exports, as the docs list it.

    Attributes:
        name: The full name, namespace included, as it appears in a scrape's ``# TYPE`` line
            (a counter's samples add ``_total``, a histogram's ``_bucket``, ``_count``, ``_sum``).
        kind: ``"counter"``, ``"gauge"`` or ``"histogram"``.
        labels: Its label names.
        help: What it measures.
    """

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str

    @property
    def sample_names(self) -> tuple[str, ...]:
        """The names its samples carry in the text format."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


def exported_metrics(*, namespace: str = "resilience_kit") -> list[ExportedMetric]:
    """Every metric the collector exports with the sources added now, in scrape order."""
    _check_namespace(namespace)
    return [
        ExportedMetric(_full_name(namespace, f.name), f.kind, f.labels, f.help)
        for f in collect_families()
    ]
