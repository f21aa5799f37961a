"""Fault injection: make calls fail, slow down or return canned results on purpose.

``inject(...)`` builds an [`Injector`][resilience_kit.chaos.Injector] that, at a given rate, adds
latency and then raises an exception or returns a result instead of running the call. Use it as a
decorator on a def or async def, as a guard around a block (``with`` / ``async with``), or through
[`Injector.call()`][resilience_kit.chaos.Injector.call].

Injection is **off unless enabled**, so an injector can live in production code and be switched
on in a test or a staging deployment: per injector with ``enabled=True``, or process-wide with
the ``RESILIENCE_KIT_CHAOS=1`` environment variable (read at import) or
[`enable()`][resilience_kit.chaos.enable] / [`disable()`][resilience_kit.chaos.disable], which nest:
the newest switch still in effect decides. While it is off a decorated call costs one flag check
more than a plain call.

Decisions come from the injector's own `random.Random`, so a ``seed`` replays the same
sequence of faults, and one lock keeps the sequence and the counts exact across threads.

Examples:
    ```python
    from resilience_kit import chaos


    @chaos.inject(fault=ConnectionError, rate=0.2, seed=7)
    def fetch_rates() -> dict[str, float]:
        return {"EUR": 1.0}


    with chaos.enable():
        outcomes = []
        for _ in range(5):
            try:
                outcomes.append(fetch_rates()["EUR"])
            except ConnectionError:
                outcomes.append(None)
    ```
"""

from __future__ import annotations

from resilience_kit._chaos.injector import ChaosStats, Injector, inject
from resilience_kit._chaos.switch import (  # noqa: F401 - the _names: see below
    _BASE,
    ENV_VAR,
    _restore,
    _snapshot,
    disable,
    enable,
    is_enabled,
)

# `_BASE`, `_snapshot()` and `_restore()` stay out of `__all__`: private API for the pytest
# plugin and the tests, reached as `resilience_kit.chaos._snapshot()` and so on.
__all__ = ["ENV_VAR", "ChaosStats", "Injector", "disable", "enable", "inject", "is_enabled"]
