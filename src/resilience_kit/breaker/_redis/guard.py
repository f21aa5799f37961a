"""The health guard: once Redis is found unreachable, stop asking it until it is worth a probe.

A dead or hanging Redis must not cost every call a timeout. The guard turns the first error
into a "down" state; while down, callers skip Redis entirely (they decide on local state),
except that one probe is let through every ``retry_interval`` seconds (doubling up to
``max_interval`` while Redis stays down). The first success after that is "up" again. Both
edges are reported to the guard's listeners once, never while its lock is held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["HealthGuard"]


class HealthGuard:
    """Up/down state of one Redis connection, shared by everything that uses it.

    Attributes:
        errors: Store errors seen so far (connection errors, timeouts, server errors).
        last_error: The latest of them, or ``None``.
    """

    def __init__(
        self,
        *,
        retry_interval: float = 0.5,
        max_interval: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retry_interval = retry_interval
        self._max_interval = max_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._down = False
        self._interval = retry_interval
        self._retry_at = 0.0
        self.errors = 0
        self.last_error: BaseException | None = None
        self.on_down: list[Callable[[BaseException], None]] = []
        self.on_up: list[Callable[[], None]] = []

    @property
    def down(self) -> bool:
        """Whether Redis is considered unreachable now."""
        return self._down

    def allows(self) -> bool:
        """Whether a caller should talk to Redis now: always when up; when down, one probe
        per interval (the caller that gets ``True`` is the probe)."""
        if not self._down:
            return True
        with self._lock:
            now = self._monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._interval
            return True

    def failed(self, error: BaseException) -> None:
        """Report a store error; the first one while up turns the guard down."""
        with self._lock:
            self.errors += 1
            self.last_error = error
            if self._down:
                self._interval = min(self._interval * 2, self._max_interval)
                self._retry_at = self._monotonic() + self._interval
                return
            self._down = True
            self._interval = self._retry_interval
            self._retry_at = self._monotonic() + self._interval
        for callback in tuple(self.on_down):
            callback(error)

    def succeeded(self) -> None:
        """Report an answer from Redis; the first one while down turns the guard up."""
        if self._down and self._flip_up():
            for callback in tuple(self.on_up):
                callback()

    def _flip_up(self) -> bool:
        """Mark the guard up; whether this call did it (another thread may have been first)."""
        with self._lock:
            was_down, self._down = self._down, False
            self._interval = self._retry_interval
            return was_down
