"""Decorator (def, async def, methods), call / call_async, with / async with."""

from __future__ import annotations

import inspect

import pytest

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState
from resilience_kit.testing import FakeClock


def test_decorator_keeps_the_signature_and_metadata() -> None:
    breaker = CircuitBreaker("forms")

    @breaker
    def add(a: int, b: int = 2, *, scale: int = 1) -> int:
        """Add things."""
        return (a + b) * scale

    @breaker
    async def fetch(url: str) -> bytes:
        return url.encode()

    assert add.__name__ == "add"
    assert add.__doc__ == "Add things."
    assert str(inspect.signature(add)) == "(a: 'int', b: 'int' = 2, *, scale: 'int' = 1) -> 'int'"
    assert add(1, scale=3) == 9
    assert inspect.iscoroutinefunction(fetch)
    assert not inspect.iscoroutinefunction(add)
    assert add.__wrapped__ is not add  # type: ignore[attr-defined]


async def test_async_decorator_counts_like_the_sync_one(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forms", failure_threshold=2)

    @breaker
    async def work(ok: bool) -> str:
        if not ok:
            raise ValueError("no")
        return "yes"

    assert await work(True) == "yes"
    for _ in range(2):
        with pytest.raises(ValueError, match="no"):
            await work(False)
    with pytest.raises(CircuitOpenError):
        await work(True)
    stats = breaker.stats()
    assert (stats.total_successes, stats.total_failures, stats.total_rejected) == (1, 2, 1)


def test_methods_static_and_class_methods(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forms", failure_threshold=1, fallback=lambda *a: a)

    class Client:
        def __init__(self, base: str) -> None:
            self.base = base

        @breaker
        def get(self, path: str) -> str:
            return self.base + path

        @breaker
        @staticmethod
        def ping() -> str:
            return "pong"

        @breaker
        @classmethod
        def kind(cls) -> str:
            return cls.__name__

        @breaker
        def broken(self, x: int) -> None:
            raise ValueError(x)

    client = Client("http://h")
    assert client.get("/a") == "http://h/a"
    assert Client.get(client, "/b") == "http://h/b"
    assert Client.ping() == client.ping() == "pong"
    assert Client.kind() == "Client"
    assert breaker.stats().total_successes == 5
    # The fallback sees the bound call's own arguments, self included.
    assert client.broken(3) == (client, 3)


def test_call_passes_arguments_through(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forms")
    assert breaker.call(divmod, 7, 2) == (3, 1)
    assert breaker.call(sorted, [3, 1], reverse=True) == [3, 1]


async def test_call_async(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forms", failure_threshold=1)

    async def echo(x: int, *, y: int) -> int:
        return x + y

    async def boom() -> None:
        raise OSError

    assert await breaker.call_async(echo, 1, y=2) == 3
    with pytest.raises(OSError):  # noqa: PT011 - the plain error, untouched
        await breaker.call_async(boom)
    with pytest.raises(CircuitOpenError):
        await breaker.call_async(echo, 1, y=2)


def test_with_block_records_its_outcome_and_never_suppresses(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forms", failure_threshold=2)
    with breaker as entered:
        assert entered is breaker
    for _ in range(2):
        with pytest.raises(ValueError, match="x"), breaker:
            raise ValueError("x")
    with pytest.raises(CircuitOpenError), breaker:
        pytest.fail("a rejected block must not run")
    stats = breaker.stats()
    assert (stats.total_successes, stats.total_failures, stats.total_rejected) == (1, 2, 1)


async def test_async_with_block(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forms", failure_threshold=1, recovery_timeout=5)
    async with breaker:
        pass
    with pytest.raises(ValueError, match="x"):
        async with breaker:
            raise ValueError("x")
    assert breaker.state is CircuitState.OPEN
    clock.advance(5)
    async with breaker:
        pass
    assert breaker.state is CircuitState.CLOSED


def test_nested_blocks_of_one_breaker_keep_their_own_admissions(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forms", failure_threshold=1, recovery_timeout=5)
    with pytest.raises(ValueError, match="x"), breaker:
        raise ValueError("x")
    clock.advance(5)
    with breaker:  # the trial
        with pytest.raises(CircuitOpenError), breaker:
            pass  # rejected: the trial slot is taken
        assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.state is CircuitState.CLOSED


def test_exit_without_enter_records_nothing() -> None:
    breaker = CircuitBreaker("forms")
    breaker.__exit__(None, None, None)
    assert breaker.stats().total_calls == 0
