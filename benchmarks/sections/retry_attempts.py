"""Retry on the failure path: cost against the number of attempts, every wait zeroed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from benchmarks._harness import Section, SyncLoop
from benchmarks.sections import _retries as r
from benchmarks.sections._retry_cases import failure_case, plain_attempts


@contextlib.contextmanager
def _no_sleep() -> Iterator[None]:
    # Every library here (and tenacity under resilience_kit and stamina) sleeps through
    # time.sleep even for a zero wait, and sleep(0) costs tens of microseconds of timer slack
    # on a VM: it would drown the per-attempt bookkeeping this section is about.
    real = time.sleep
    time.sleep = lambda _seconds: None
    try:
        yield
    finally:
        time.sleep = real


SECTION = Section(
    "retry_attempts",
    "Retry, failure path against attempts",
    "The function fails every time; each library is set to N attempts with zero waits and "
    "re-raises the last `ValueError`. The baseline calls the same function N times in a plain "
    "loop. `time.sleep` is a no-op while this section runs: every library still calls it for a "
    "zero wait, and a real `sleep(0)` costs about 70 µs of timer slack on this VM, which "
    "would hide what is measured: each library's bookkeeping per attempt. Logging is left "
    "as each library ships it (the root logger has a `NullHandler`, so records are built and "
    "handled, not printed): resilience_kit and stamina log a WARNING before each wait, backoff "
    "logs each wait at INFO (its logger's own level) and the give-up at ERROR, tenacity and "
    "pyresilience (without listeners) log nothing. The `log_level=DEBUG` row is resilience_kit "
    "with its retry log below the root logger's level.",
    order=60,
    requires=("resilience_kit.retry",),
    chart="lines",
    x_label="attempts",
    rounds_factor=0.5,
    context=_no_sleep,
)

for attempts in range(1, 6):
    group = SECTION.group(
        f"attempts_{attempts}",
        f"{attempts} attempt{'s' if attempts > 1 else ''}, all failing",
        SyncLoop(raises=True),
        param=attempts,
    )
    group.baseline(f"plain loop of {attempts}")(plain_attempts(attempts))
    for adapter in (r.OURS, r.OURS_QUIET, r.TENACITY, r.STAMINA, r.BACKOFF, r.PYRESILIENCE):
        group.add(adapter.label, adapter.library)(failure_case(adapter, attempts))
