"""Test doubles for retry tests: recorded sleeps on a fake clock (Flaky is in tests/doubles.py)."""

from __future__ import annotations

from resilience_kit.testing import FakeClock


class Sleeps:
    """Records sleeps and advances a FakeClock by them, so deadlines see the time pass."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.recorded: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.recorded.append(seconds)
        self.clock.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
