"""What counts as a failure, what passes through, and when the fallback answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resilience_kit import (
    BreakerListener,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
)
from resilience_kit.composition import resilient
from resilience_kit.testing import FakeClock


class Flaky(Exception):
    pass


def raiser(error: BaseException) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        raise error

    return run


def test_failure_on_limits_what_counts(clock: FakeClock) -> None:
    breaker = CircuitBreaker("o", failure_threshold=1, failure_on=(ConnectionError,))
    with pytest.raises(KeyError):
        breaker.call(raiser(KeyError("k")))
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(ConnectionError):
        breaker.call(raiser(ConnectionError()))
    assert breaker.state is CircuitState.OPEN


def test_ignore_wins_over_failure_on(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        "o", failure_threshold=1, failure_on=OSError, ignore=(FileNotFoundError,)
    )
    with pytest.raises(FileNotFoundError):
        breaker.call(raiser(FileNotFoundError()))
    stats = breaker.stats()
    assert (stats.state, stats.total_failures, stats.total_calls) == (CircuitState.CLOSED, 0, 1)


def test_failure_if_counts_a_result_but_still_returns_it(clock: FakeClock) -> None:
    breaker = CircuitBreaker("o", failure_threshold=2, failure_if=lambda result: result is None)
    assert breaker.call(lambda: None) is None
    assert breaker.call(lambda: 0) == 0
    assert breaker.call(lambda: None) is None
    assert breaker.call(lambda: None) is None
    assert breaker.state is CircuitState.OPEN


def test_a_raising_failure_if_is_logged_and_counts_a_success(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker("o", failure_threshold=1, failure_if=lambda result: 1 / 0)
    assert breaker.call(lambda: 5) == 5
    assert breaker.stats().total_successes == 1
    assert "failure_if of breaker 'o' failed" in caplog.text


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3), asyncio.CancelledError()])
def test_base_exceptions_are_never_counted_nor_swallowed(
    clock: FakeClock, error: BaseException
) -> None:
    fallback_calls: list[Any] = []
    breaker = CircuitBreaker(
        "o",
        failure_threshold=1,
        failure_on=(Exception, LookupError),
        fallback=lambda *a, **k: fallback_calls.append(a),
    )
    with pytest.raises(type(error)):
        breaker.call(raiser(error))
    stats = breaker.stats()
    assert (stats.state, stats.total_failures, stats.total_calls) == (CircuitState.CLOSED, 0, 1)
    assert fallback_calls == []


@pytest.mark.parametrize("error", [KeyboardInterrupt(), asyncio.CancelledError(), KeyError()])
def test_an_uncounted_end_gives_the_trial_slot_back(clock: FakeClock, error: BaseException) -> None:
    breaker = CircuitBreaker("o", failure_threshold=1, recovery_timeout=5, failure_on=ValueError)
    with pytest.raises(ValueError, match="down"):
        breaker.call(raiser(ValueError("down")))
    clock.advance(5)
    with pytest.raises(type(error)):
        breaker.call(raiser(error))
    # The slot is free again: the next trial runs and closes the breaker.
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED


async def test_a_cancelled_async_trial_gives_its_slot_back(clock: FakeClock) -> None:
    breaker = CircuitBreaker("o", failure_threshold=1, recovery_timeout=5)
    with pytest.raises(ValueError, match="down"):
        breaker.call(raiser(ValueError("down")))
    clock.advance(5)
    started = asyncio.Event()

    @breaker
    async def hang() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is CircuitState.HALF_OPEN

    @breaker
    async def fine() -> str:
        return "fine"

    assert await fine() == "fine"
    assert breaker.state is CircuitState.CLOSED


class TestFallback:
    def test_answers_a_recorded_failure_with_the_call_arguments(self, clock: FakeClock) -> None:
        seen = []

        def fallback(user: str, *, lang: str = "en") -> str:
            seen.append((user, lang))
            return "sorry"

        breaker = CircuitBreaker("f", failure_threshold=5, fallback=fallback)

        @breaker
        def greet(user: str, *, lang: str = "en") -> str:
            raise Flaky(user)

        assert greet("ann", lang="fr") == "sorry"
        assert seen == [("ann", "fr")]
        assert breaker.stats().total_failures == 1

    def test_gets_the_error_when_it_declares_an_error_parameter(self, clock: FakeClock) -> None:
        errors: list[BaseException] = []

        def fallback(x: int, error: BaseException) -> int:
            errors.append(error)
            return -x

        breaker = CircuitBreaker("f", failure_threshold=1, fallback=fallback)
        problem = Flaky("first")
        assert breaker.call(raiser(problem), 4) == -4
        assert breaker.call(lambda x: x, 7) == -7  # rejected now
        assert errors[0] is problem
        assert isinstance(errors[1], CircuitOpenError)
        assert errors[1].retry_after == 60

    def test_never_sees_ignored_or_unlisted_errors(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker(
            "f", failure_on=(Flaky,), ignore=(KeyError,), fallback=lambda *a, **k: "fallback"
        )
        with pytest.raises(KeyError):
            breaker.call(raiser(KeyError()))
        with pytest.raises(TypeError):
            breaker.call(raiser(TypeError()))
        assert breaker.call(raiser(Flaky())) == "fallback"

    def test_not_used_for_results_that_count_as_failures(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("f", failure_if=bool, fallback=lambda *a, **k: "fallback")
        assert breaker.call(lambda: "truthy") == "truthy"

    async def test_async_fallbacks_are_awaited(self, clock: FakeClock) -> None:
        async def fallback(x: int) -> int:
            return x * 10

        breaker = CircuitBreaker("f", failure_threshold=1, fallback=fallback)

        @breaker
        async def work(x: int) -> int:
            raise Flaky

        assert await work(2) == 20  # failure
        assert await work(3) == 30  # rejection
        assert await breaker.call_async(work, 4) == 40

    async def test_a_sync_fallback_serves_an_async_function(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker("f", failure_threshold=1, fallback=lambda x: x + 1)

        @breaker
        async def work(x: int) -> int:
            raise Flaky

        assert await work(1) == 2
        assert await work(2) == 3


class Rejections(BreakerListener):
    def __init__(self) -> None:
        self.count = 0

    def on_rejected(self, breaker: CircuitBreaker) -> None:
        self.count += 1


@pytest.mark.parametrize("form", ["sync", "async"])
@pytest.mark.parametrize("listened", [False, True], ids=["wrapper", "general-path"])
async def test_a_decorated_rejection_answered_by_a_fallback(
    clock: FakeClock, form: str, listened: bool
) -> None:
    # The wrapper answers a rejection itself unless a listener hears rejections; either way
    # the fallback gets the call's own arguments, and the rejection when it asks for it.
    seen: list[tuple[Any, ...]] = []

    def plain(x: int, *, scale: int = 1) -> int:
        seen.append((x, scale))
        return -x

    def with_error(x: int, *, scale: int = 1, error: BaseException | None = None) -> int:
        seen.append((x, scale, error))
        return -x

    async def awaited(x: int, *, scale: int = 1) -> int:
        return -x * 10

    for fallback in (plain, with_error, awaited):
        if form == "sync" and fallback is awaited:
            continue
        rejections = Rejections()
        breaker = CircuitBreaker(
            "f",
            failure_threshold=1,
            recovery_timeout=30,
            fallback=fallback,
            listeners=[rejections] if listened else [],
        )

        def work(x: int, *, scale: int = 1) -> int:
            raise Flaky

        async def work_async(x: int, *, scale: int = 1) -> int:
            raise Flaky

        guarded: Any = breaker(work if form == "sync" else work_async)

        async def call(*args: Any, guarded: Any = guarded, **kwargs: Any) -> Any:
            answer = guarded(*args, **kwargs)
            return await answer if form == "async" else answer

        seen.clear()
        await call(1)  # the failure that opens it
        clock.advance(10)
        answers = [await call(2), await call(3, scale=5)]
        expected = [-20, -30] if fallback is awaited else [-2, -3]
        assert answers == expected
        stats = breaker.stats()
        assert (stats.total_rejected, stats.total_failures) == (2, 1)
        assert rejections.count == (2 if listened else 0)
        if fallback is plain:
            assert seen == [(1, 1), (2, 1), (3, 5)]
        elif fallback is with_error:
            assert [entry[:2] for entry in seen] == [(1, 1), (2, 1), (3, 5)]
            assert isinstance(seen[0][2], Flaky)
            for _, _, error in seen[1:]:
                assert isinstance(error, CircuitOpenError)
                assert (error.breaker, error.retry_after, error.state) == (
                    "f",
                    20,
                    CircuitState.OPEN,
                )
        breaker.unregister()


# -- a BaseException in the bookkeeping after the call -------------------------------------


def half_open(**options: Any) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    breaker = CircuitBreaker("o", failure_threshold=1, recovery_timeout=5, clock=clock, **options)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    clock.advance(5)
    return breaker, clock


def interrupt(*args: Any) -> bool:
    raise KeyboardInterrupt  # a signal arriving while the library's code runs


def test_an_interrupt_in_failure_if_gives_the_trial_slot_back() -> None:
    breaker, _ = half_open(failure_if=interrupt)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(lambda: "ok")
    stats = breaker.stats()
    assert (stats.state, stats.total_successes, stats.total_calls) == (
        CircuitState.HALF_OPEN,
        0,
        2,
    )
    # The slot is free: the next call is a trial (and this failure_if flags nothing).
    breaker._failure_if = None
    assert breaker.call(lambda: "trial") == "trial"
    assert breaker.state is CircuitState.CLOSED


class ExitOn:
    """A listener that raises SystemExit from one event (as a shutdown hook might)."""

    def __init__(self, event: str) -> None:
        self.armed = False
        setattr(self, event, self.exit)

    def exit(self, *args: Any) -> None:
        if self.armed:
            raise SystemExit(1)


def test_a_system_exit_in_on_success_still_settles_the_trial() -> None:
    listener = ExitOn("on_success")
    breaker, _ = half_open(listeners=[listener])
    listener.armed = True
    with pytest.raises(SystemExit):
        breaker.call(lambda: "ok")
    stats = breaker.stats()
    assert (stats.state, stats.total_successes) == (CircuitState.CLOSED, 1)


def test_a_system_exit_in_on_failure_still_records_the_failed_trial() -> None:
    listener = ExitOn("on_failure")
    breaker, _ = half_open(listeners=[listener])
    listener.armed = True
    with pytest.raises(SystemExit):
        breaker.call(int, "y")
    stats = breaker.stats()
    assert (stats.state, stats.total_failures) == (CircuitState.OPEN, 2)


# -- a fallback that takes `error` and a call that has an `error` of its own ----------------


def test_a_fallback_taking_error_refuses_a_function_taking_error() -> None:
    def fallback(message: str, error: BaseException | None = None) -> str:
        return "fallback"

    breaker = CircuitBreaker("o", fallback=fallback)

    def report(message: str, error: str | None = None) -> str:
        raise ConnectionError("down")

    with pytest.raises(ConfigurationError, match="could not tell the call's `error`") as caught:
        breaker(report)
    assert (caught.value.parameter, caught.value.value) == ("fallback", fallback)
    with pytest.raises(ConfigurationError, match="could not tell the call's `error`"):
        resilient(breaker=breaker)(report)
    # A fallback without `error` gets the call's own arguments, `error` among them.
    plain = CircuitBreaker("o2", fallback=lambda message, *more, **kw: f"{message}/{kw['error']}")
    assert plain(report)("disk full", error="E42") == "disk full/E42"


def test_a_call_passing_error_keeps_it_and_the_fallback_gets_no_exception() -> None:
    seen: list[Any] = []

    def fallback(*args: Any, error: Any = None, **kwargs: Any) -> str:
        seen.append(error)
        return "fallback"

    def send(**fields: Any) -> str:
        raise ConnectionError("down")

    breaker = CircuitBreaker("o", fallback=fallback)
    assert breaker.call(send, error="E42") == "fallback"
    assert breaker(send)(level="x") == "fallback"
    assert seen[0] == "E42"
    assert isinstance(seen[1], ConnectionError)


class CountingClock(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return super().monotonic()


@pytest.mark.parametrize("result", ["good", "BAD"])
def test_failure_if_alone_reads_the_clock_once_per_call(result: str) -> None:
    # Nothing is timed, and the consecutive policy places no success in time; a flagged
    # result is a failure, which is dated (last_failure), so it reads the clock again.
    clock = CountingClock()
    breaker = CircuitBreaker("o", failure_if=lambda value: value == "BAD", clock=clock)
    guarded = breaker(lambda: result)
    guarded()
    assert clock.reads == (1 if result == "good" else 2)


# -- a fallback that cannot take the call's arguments ----------------------------------------


def _lookup(user_id: int, *, fresh: bool = False) -> str:
    raise ConnectionError("down")


@pytest.mark.parametrize(
    "fallback",
    [
        lambda: "anonymous",  # takes nothing
        lambda user_id, region: "anonymous",  # wants an argument no call gives
        lambda user_id: "anonymous",  # cannot take the keyword `fresh`
        lambda user_id, *, error: "anonymous",  # error= is fine; `fresh` is not
        lambda uid, fresh=False: "anonymous",  # _lookup(user_id=1) would pass `user_id`
        lambda *args: "anonymous",  # cannot take `fresh`, nor user_id by keyword
    ],
    ids=[
        "no-parameters",
        "extra-required",
        "missing-keyword",
        "error-but-no-keyword",
        "renamed-parameter",
        "positional-only",
    ],
)
def test_a_fallback_that_cannot_take_the_calls_arguments_is_refused_at_decoration(
    fallback: Any,
) -> None:
    breaker = CircuitBreaker("o", fallback=fallback)
    with pytest.raises(ConfigurationError, match=r"cannot take the arguments of .*_lookup") as c:
        breaker(_lookup)
    assert (c.value.parameter, c.value.value) == ("fallback", fallback)
    with pytest.raises(ConfigurationError, match=r"fallback .* of resilient\(\) cannot take"):
        resilient(fallback=fallback)(_lookup)
    # The breaker's own fallback answers resilient()'s final outcome: checked there too.
    with pytest.raises(ConfigurationError, match="cannot take the arguments"):
        resilient(breaker=breaker)(_lookup)


def _forward(*args: Any, **kwargs: Any) -> str:
    raise ConnectionError("down")


class Repository:
    def find(self, key: str, default: str | None = None) -> str:
        raise ConnectionError("down")

    async def find_async(self, key: str) -> str:
        raise ConnectionError("down")


@pytest.mark.parametrize(
    ("fn", "fallback"),
    [
        (_lookup, lambda *args, **kwargs: "anonymous"),
        (_lookup, lambda user_id, fresh=False: "anonymous"),
        (_lookup, lambda user_id, fresh=False, error=None: "anonymous"),
        (_lookup, lambda user_id, **kwargs: kwargs.get("error")),
        # A method's fallback gets self; an optional argument by position or by keyword.
        (Repository.find, lambda repo, key, default=None: default),
        (Repository.find, lambda repo, key, *rest, **kwargs: kwargs.get("default")),
        (Repository.find_async, lambda *args, **kwargs: None),
        (Repository.find_async, lambda repo, key: None),  # self goes by position only
        (int, lambda *args: 0),  # no readable signature: not checked
        (_forward, lambda url: None),  # takes anything: its calls cannot be known
    ],
)
def test_fallbacks_that_fit_decorate_and_answer(fn: Any, fallback: Any) -> None:
    breaker = CircuitBreaker("o", fallback=fallback)
    assert callable(breaker(fn))
    assert callable(resilient(fallback=fallback)(fn))


@pytest.mark.parametrize(
    "fallback",
    [lambda *args: None, lambda repo, name: None, lambda repo, key, fallback_default=None: None],
    ids=["positional-only", "renamed", "optional-renamed"],
)
def test_a_method_fallback_must_take_the_keyword_calls_too(fallback: Any) -> None:
    # repository.find(key="k") or find("k", default="d") reaches the fallback as (self, key="k")
    # or (self, "k", default="d"): refused at decoration rather than a TypeError mid-outage.
    with pytest.raises(ConfigurationError, match=r"a call Repository.find\(.*=\.\.\.\) would fail"):
        CircuitBreaker("o", fallback=fallback)(Repository.find)


def test_a_keyword_call_reaches_a_fallback_that_fits() -> None:
    breaker = CircuitBreaker("kw", failure_threshold=1, fallback=lambda user_id, fresh=False: fresh)
    guarded = breaker(_lookup)
    assert guarded(user_id=1, fresh=True) is True  # the failure that opens it, answered
    assert guarded(user_id=2) is False  # rejected while open, answered


def test_a_method_fallback_gets_self_and_answers_an_outage() -> None:
    def cached(repo: Repository, key: str, default: str | None = None) -> str:
        return f"cached {key} for {type(repo).__name__}"

    breaker = CircuitBreaker("o", fallback=cached)

    class Guarded(Repository):
        @breaker
        def find(self, key: str, default: str | None = None) -> str:
            raise ConnectionError("down")

    assert Guarded().find("k", default="d") == "cached k for Guarded"
