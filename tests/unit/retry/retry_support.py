"""Test doubles for retry tests: recorded sleeps on a fake clock, callables that fail in turn."""

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


class Flaky:
    """A callable that raises the given errors in turn, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: object = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


class AsyncFlaky(Flaky):
    async def run(self, *args: object, **kwargs: object) -> object:
        return self(*args, **kwargs)
