"""OpenTelemetry: the Prometheus collector's figures as observable instruments, and span events.

```python
from resilience_kit import otel

instrumentation = (
    otel.instrument()
)  # the global MeterProvider; or meter_provider=...
instrumentation.close()  # when you want it undone (tests)
```

- Metrics: one observable instrument per figure the
  [Prometheus collector][resilience_kit.prometheus] exports (counters as observable counters,
  gauges as observable gauges, named ``resilience_kit.breaker_calls`` and so on, with the same
  attributes), read only when the SDK collects: no cost on the hot path. A histogram (the query
  durations) is exported as its ``.count`` and ``.sum`` counters.
- Span events, on the span current where it happens: ``resilience_kit.breaker.transition``
  (attributes ``breaker.name``, ``breaker.from``, ``breaker.to``, ``breaker.cause``) and
  ``resilience_kit.retry`` before each retry's wait (``retry.policy``, ``retry.attempt``,
  ``retry.wait_s``, and ``error.type`` or, for a retried result, ``retry.result_type``). The
  retry events come from the records the retry layer logs on the ``resilience_kit.retry``
  logger, so they follow its level (``WARNING`` by default, the policies' ``log_level``).

Needs the ``otel`` extra (``opentelemetry-api``); an SDK and an exporter are yours to choose.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from resilience_kit import __version__
from resilience_kit._metrics import MetricFamily, collect_families, enable_transition_counting

__all__ = ["Instrumentation", "instrument"]

_RETRY_LOGGER = "resilience_kit.retry"
_FRESH_FOR = 0.5  # seconds one collection serves every instrument's callback


class _SpanEvents(logging.Handler):
    """Breaker transitions (a global listener) and retries (log records) as span events."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)

    def on_state_change(self, breaker: Any, old: Any, new: Any, cause: str = "") -> None:
        from opentelemetry import trace

        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "resilience_kit.breaker.transition",
                {
                    "breaker.name": breaker.name,
                    "breaker.from": str(old),
                    "breaker.to": str(new),
                    "breaker.cause": cause,
                },
            )

    def emit(self, record: logging.LogRecord) -> None:
        attempt = getattr(record, "retry_attempt", None)
        if attempt is None:
            return
        from opentelemetry import trace

        span = trace.get_current_span()
        if span.is_recording():
            attributes: dict[str, str | int | float] = {
                "retry.policy": str(getattr(record, "retry_policy", "")),
                "retry.attempt": int(attempt),
                "retry.wait_s": float(getattr(record, "retry_wait", 0.0)),
            }
            # A failed attempt names its error's type, a retried result its own type.
            for field, key in (("error_type", "error.type"), ("result_type", "retry.result_type")):
                value = getattr(record, field, None)
                if value is not None:
                    attributes[key] = str(value)
            span.add_event("resilience_kit.retry", attributes)


class Instrumentation:
    """What [instrument][resilience_kit.otel.instrument] set up; ``close()`` undoes it."""

    def __init__(self, namespace: str, sources: tuple[str, ...] | None) -> None:
        self.namespace = namespace
        self._sources = sources
        self._lock = threading.Lock()
        self._families: dict[str, MetricFamily] = {}
        self._collected_at = -_FRESH_FOR
        self._open = True
        self._events: _SpanEvents | None = None

    def _current(self) -> dict[str, MetricFamily]:
        # The SDK calls every instrument's callback in turn: one collection serves them all.
        with self._lock:
            now = time.monotonic()
            if now - self._collected_at >= _FRESH_FOR:
                self._families = {f.name: f for f in collect_families(self._sources)}
                self._collected_at = now
            return self._families

    def _callback(self, name: str, part: str | None) -> Any:
        from opentelemetry.metrics import Observation

        def observe(options: Any) -> Iterable[Observation]:
            if not self._open:
                return []
            family = self._current().get(name)
            if family is None:
                return []
            observations = []
            for values, value in family.samples:
                attributes = dict(zip(family.labels, values, strict=True))
                number = value if part is None else getattr(value, part)
                observations.append(Observation(number, attributes))
            return observations

        return observe

    def close(self) -> None:
        """Stop observing and stop adding span events (instruments stay, reporting nothing)."""
        self._open = False
        if self._events is not None:
            from resilience_kit.breaker import remove_global_listener

            remove_global_listener(self._events)
            logging.getLogger(_RETRY_LOGGER).removeHandler(self._events)
            self._events = None


def _unit(name: str) -> str:
    return "s" if name.endswith("_seconds") else "1"


def instrument(
    *,
    meter_provider: Any = None,
    namespace: str = "resilience_kit",
    sources: Iterable[str] | None = None,
    span_events: bool = True,
) -> Instrumentation:
    """Export the figures through OpenTelemetry, and add span events.

    Args:
        meter_provider: Where the instruments are created (the global one if ``None``).
        namespace: Prefix of every instrument name (``resilience_kit.breaker_calls``).
        sources: The sources to read (every source if ``None``, as
            [register][resilience_kit.prometheus.register]). Instruments are created for the
            figures the sources have now: call this after adding your own sources.
        span_events: Add breaker transitions and retries as events on the current span.
    """
    from opentelemetry import metrics

    chosen = None if sources is None else tuple(sources)
    meter = metrics.get_meter("resilience_kit", __version__, meter_provider=meter_provider)
    state = Instrumentation(namespace, chosen)
    enable_transition_counting()
    prefix = f"{namespace}." if namespace else ""
    for family in collect_families(chosen):
        name = f"{prefix}{family.name}"
        if family.kind == "histogram":
            for part in ("count", "sum"):
                meter.create_observable_counter(
                    f"{name}.{part}",
                    callbacks=[state._callback(family.name, part)],
                    unit=_unit(family.name) if part == "sum" else "1",
                    description=f"{family.help} ({part})",
                )
        elif family.kind == "counter":
            meter.create_observable_counter(
                name,
                callbacks=[state._callback(family.name, None)],
                unit=_unit(family.name),
                description=family.help,
            )
        else:
            meter.create_observable_gauge(
                name,
                callbacks=[state._callback(family.name, None)],
                unit=_unit(family.name),
                description=family.help,
            )
    if span_events:
        from resilience_kit.breaker import add_global_listener

        events = _SpanEvents()
        add_global_listener(events)
        logging.getLogger(_RETRY_LOGGER).addHandler(events)
        state._events = events
    return state
