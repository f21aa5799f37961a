"""Decorator (def, async def, methods), call / call_async, with / async with."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import pytest

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, ConfigurationError
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
    breaker = CircuitBreaker("forms", failure_threshold=1, fallback=lambda *a, **k: a)

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


# -- a decorated call that ends after other calls' outcomes ----------------------------------


def test_a_success_ending_after_a_failure_breaks_the_run_of_failures() -> None:
    # The call starts on the fast path (clean breaker), a failure is recorded while it runs,
    # then it succeeds: the failures on either side of it are not consecutive.
    breaker = CircuitBreaker("forms", failure_threshold=2)
    entered, release = threading.Event(), threading.Event()

    @breaker
    def slow_ok() -> str:
        entered.set()
        release.wait()
        return "ok"

    @breaker
    def boom() -> None:
        raise ConnectionError("down")

    thread = threading.Thread(target=slow_ok)
    thread.start()
    entered.wait()
    with pytest.raises(ConnectionError):
        boom()
    release.set()
    thread.join()
    assert breaker.stats().failure_count == 0
    with pytest.raises(ConnectionError):
        boom()
    assert breaker.state is CircuitState.CLOSED


async def test_an_async_success_ending_after_a_failure_breaks_the_run_of_failures() -> None:
    breaker = CircuitBreaker("forms", failure_threshold=3)

    @breaker
    async def ok(gate: asyncio.Event) -> str:
        await gate.wait()
        return "ok"

    @breaker
    async def fail() -> None:
        raise ConnectionError("down")

    gates = [asyncio.Event(), asyncio.Event()]
    slow = [asyncio.create_task(ok(gate)) for gate in gates]  # admitted while clean
    await asyncio.sleep(0)
    for index in range(3):  # F S F S F, in the order the outcomes arrive
        with pytest.raises(ConnectionError):
            await fail()
        if index < 2:
            gates[index].set()
            assert await slow[index] == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats().failure_count == 1


# -- what a decorator is given -------------------------------------------------------------


class AsyncClient:
    """An API client called as an object."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, key: str) -> str:
        self.calls += 1
        raise ConnectionError(key)


async def test_an_object_with_async_call_is_guarded_as_async(clock: FakeClock) -> None:
    breaker = CircuitBreaker("forms", failure_threshold=1, recovery_timeout=5)
    client = AsyncClient()
    guarded = breaker(client)
    assert inspect.iscoroutinefunction(guarded)
    assert guarded.__name__ == "AsyncClient"
    with pytest.raises(ConnectionError):
        await guarded("k")
    with pytest.raises(CircuitOpenError):
        await guarded("k")
    clock.advance(5)
    with pytest.raises(ConnectionError):  # the trial ran, and failed
        await guarded("k")
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_successes, client.calls) == (2, 0, 2)
    assert breaker.state is CircuitState.OPEN


async def test_a_partial_of_an_async_function_is_guarded_as_async() -> None:
    breaker = CircuitBreaker("forms", failure_threshold=1)

    async def fetch(host: str, path: str) -> str:
        """Fetch a page."""
        raise ConnectionError(host + path)

    guarded = breaker(functools.partial(fetch, "db"))
    assert inspect.iscoroutinefunction(guarded)
    assert (guarded.__name__, guarded.__doc__) == ("fetch", "Fetch a page.")
    assert guarded.__qualname__.endswith("fetch")
    with pytest.raises(ConnectionError, match="db/x"):
        await guarded("/x")
    assert breaker.state is CircuitState.OPEN


def test_a_partial_of_a_plain_function_keeps_the_function_name() -> None:
    guarded = CircuitBreaker("forms")(functools.partial(int, base=16))
    assert guarded.__name__ == "int"
    assert guarded("ff") == 255


class GeneratorObject:
    def __call__(self) -> Iterator[int]:
        yield 1


def sync_generator() -> Iterator[int]:
    yield 1


async def async_generator() -> AsyncIterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (sync_generator, "generator function"),
        (async_generator, "async generator function"),
        (functools.partial(sync_generator), "generator function"),
        (GeneratorObject(), "generator function"),
    ],
)
def test_generator_functions_are_rejected_at_decoration(fn: Any, kind: str) -> None:
    with pytest.raises(ConfigurationError, match=f"cannot guard the {kind}") as caught:
        CircuitBreaker("forms")(fn)
    assert (caught.value.parameter, caught.value.value) == ("fn", fn)


def test_something_not_callable_is_rejected_at_decoration() -> None:
    with pytest.raises(ConfigurationError, match="fn must be callable, got 3"):
        CircuitBreaker("forms")(3)  # type: ignore[arg-type]


async def _fetch() -> str:
    return "page"


def test_a_plain_function_that_returns_a_coroutine_counts_nothing(clock: FakeClock) -> None:
    # It looks like a plain def to the decorator; its coroutine would run after the breaker
    # has judged it. The coroutine is closed (filterwarnings=error would turn a "never
    # awaited" RuntimeWarning into a failure here).
    breaker = CircuitBreaker("forms", failure_threshold=1, recovery_timeout=5)

    def fetch_later() -> Coroutine[Any, Any, str]:  # a plain def handing out a coroutine
        return _fetch()

    guarded = breaker(fetch_later)
    with pytest.raises(TypeError, match="got a coroutine back"):
        guarded()
    with pytest.raises(TypeError, match="call_async"):
        breaker.call(_fetch)  # type: ignore[arg-type]
    stats = breaker.stats()
    assert (stats.total_successes, stats.total_failures, stats.total_calls) == (0, 0, 2)
    # In HALF_OPEN it is no trial success, and the trial slot goes back.
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    clock.advance(5)
    with pytest.raises(TypeError, match="got a coroutine back"):
        guarded()
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.call(lambda: "trial") == "trial"
    assert breaker.state is CircuitState.CLOSED


async def test_call_async_refuses_a_plain_function_and_counts_nothing(clock: FakeClock) -> None:
    # The mirror of call(async_fn): awaiting a plain function's result is the caller's
    # mistake, not the dependency's failure (it used to count as one, TypeError and all).
    breaker = CircuitBreaker("forms", failure_threshold=1, recovery_timeout=5)

    def plain(x: int) -> int:
        return x * 2

    with pytest.raises(TypeError, match=r"call_async.*not awaitable.*breaker\.call"):
        await breaker.call_async(plain, 2)  # type: ignore[arg-type]
    stats = breaker.stats()
    assert (stats.state, stats.total_failures, stats.total_successes) == (
        CircuitState.CLOSED,
        0,
        0,
    )
    assert stats.total_calls == 1
    # In HALF_OPEN it is no failed trial either, and the trial slot goes back.
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    clock.advance(5)
    with pytest.raises(TypeError, match="not awaitable"):
        await breaker.call_async(plain, 2)  # type: ignore[arg-type]
    assert breaker.state is CircuitState.HALF_OPEN
    assert await breaker.call_async(_fetch) == "page"
    assert breaker.state is CircuitState.CLOSED


async def test_call_async_accepts_a_plain_function_that_returns_an_awaitable() -> None:
    breaker = CircuitBreaker("forms", failure_threshold=1)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    done.set_result("future")

    def start() -> Coroutine[Any, Any, str]:  # a plain def handing out a coroutine
        return _fetch()

    assert await breaker.call_async(start) == "page"
    assert await breaker.call_async(lambda: done) == "future"
    assert breaker.stats().total_successes == 2


async def test_call_async_counts_a_plain_function_that_raises_before_awaiting() -> None:
    # It raised while starting the call: that is the call's own failure.
    breaker = CircuitBreaker("forms", failure_threshold=1)

    def refuses() -> Coroutine[Any, Any, str]:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        await breaker.call_async(refuses)
    assert breaker.state is CircuitState.OPEN
