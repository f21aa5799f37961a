"""Fault injection: the forms, the switches, the outcomes, validation and the counts."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from resilience_kit import chaos
from resilience_kit.errors import ConfigurationError
from resilience_kit.testing import FakeClock, use_clock


@pytest.fixture(autouse=True)
def _switch_off() -> Iterator[None]:
    """Every test starts with the process switch off, whatever the environment says, and
    switches a test leaves behind (``enable()`` without ``with``) end with it."""
    state = chaos._snapshot()
    with chaos.disable():
        yield
    chaos._restore(state)


class Recorder:
    """A sleep that records instead of sleeping, in both flavours."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


# -- switches ----------------------------------------------------------------------------------


def test_an_injector_is_off_unless_enabled() -> None:
    calls = []

    @chaos.inject(fault=ConnectionError)
    def fetch(x: int) -> int:
        calls.append(x)
        return x * 2

    assert fetch(3) == 6
    assert calls == [3]
    assert fetch.__wrapped__ is not None  # type: ignore[attr-defined]
    assert chaos.inject(fault=ConnectionError).stats() == chaos.ChaosStats(0, 0, 0.0)


def test_enable_switches_every_following_injector_on_and_with_restores() -> None:
    injector = chaos.inject(fault=ConnectionError)
    fetch = injector(lambda: "ok")
    assert not chaos.is_enabled()
    with chaos.enable():
        assert chaos.is_enabled()
        assert injector.enabled
        with pytest.raises(ConnectionError):
            fetch()
        with chaos.disable():
            assert fetch() == "ok"
        with pytest.raises(ConnectionError):
            fetch()
    assert not chaos.is_enabled()
    assert fetch() == "ok"
    assert injector.stats().calls == 2


def test_enable_takes_effect_without_with() -> None:
    injector = chaos.inject(fault=ConnectionError)
    chaos.enable()
    try:
        with pytest.raises(ConnectionError):
            injector.point()
    finally:
        chaos.disable()
    injector.point()
    assert injector.stats().calls == 1


def test_enabled_true_and_false_override_the_process_switch() -> None:
    def plain() -> str:
        return "ran"

    always = chaos.inject(fault=KeyError, enabled=True)
    never = chaos.inject(fault=KeyError, enabled=False)
    assert always.enabled
    assert not never.enabled
    with pytest.raises(KeyError):
        always(plain)()
    assert never(plain) is plain  # never acts, so decorating costs nothing
    with chaos.enable():
        assert never.call(plain) == "ran"
        never.point()
    assert never.stats().calls == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), (" ON ", True), ("yes", True), ("0", False), ("", False)],
)
def test_the_environment_variable_switches_it_on_at_import(value: str, expected: bool) -> None:
    env = {**os.environ, chaos.ENV_VAR: value}
    output = subprocess.run(
        [sys.executable, "-c", "from resilience_kit import chaos; print(chaos.is_enabled())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert output.strip() == str(expected)


# -- outcomes ----------------------------------------------------------------------------------


def test_a_fault_class_gives_a_fresh_exception_each_time() -> None:
    injector = chaos.inject(fault=TimeoutError, enabled=True)
    errors = []
    for _ in range(3):
        with pytest.raises(TimeoutError) as caught:
            injector.call(lambda: None)
        errors.append(caught.value)
    assert len({id(error) for error in errors}) == 3


def test_a_fault_instance_is_copied_with_its_attributes() -> None:
    original = ConnectionError(111, "refused")
    original.host = "db"  # type: ignore[attr-defined]
    injector = chaos.inject(fault=original, enabled=True)
    raised = []
    for _ in range(2):
        with pytest.raises(ConnectionError) as caught:
            injector.point()
        raised.append(caught.value)
    first, second = raised
    assert first is not original
    assert first is not second
    assert first.args == (111, "refused")
    assert (first.errno, first.strerror) == (111, "refused")
    assert first.host == "db"  # type: ignore[attr-defined]
    assert original.__traceback__ is None  # the template is never raised itself


def test_an_instance_that_cannot_be_copied_is_rejected_at_construction() -> None:
    class Sealed(Exception):
        def __new__(cls, code: int, *, where: str) -> Sealed:
            return super().__new__(cls, code)

        def __init__(self, code: int, *, where: str) -> None:
            super().__init__(code)
            self.where = where

    with pytest.raises(ConfigurationError, match="copyable exception instance") as caught:
        chaos.inject(fault=Sealed(5, where="db"))
    assert caught.value.parameter == "fault"


def test_result_is_returned_without_running_the_call() -> None:
    calls = []

    @chaos.inject(result={"cached": True}, enabled=True)
    def fetch() -> dict[str, bool]:
        calls.append(1)
        return {"cached": False}

    assert fetch() == {"cached": True}
    assert calls == []


def test_result_none_is_a_result() -> None:
    assert chaos.inject(result=None, enabled=True).call(lambda: "real") is None


def test_latency_alone_delays_then_runs_the_call() -> None:
    sleeps = Recorder()
    injector = chaos.inject(latency=0.25, enabled=True, sleep=sleeps)
    assert injector.call(lambda x: x + 1, 1) == 2
    assert sleeps.sleeps == [0.25]
    assert injector.stats() == chaos.ChaosStats(calls=1, injected=1, latency=0.25)


def test_latency_then_fault() -> None:
    order: list[str] = []

    def sleep(seconds: float) -> None:
        order.append(f"sleep {seconds}")

    injector = chaos.inject(fault=TimeoutError, latency=2, enabled=True, sleep=sleep)
    with pytest.raises(TimeoutError):
        injector.call(lambda: order.append("call"))
    assert order == ["sleep 2.0"]


def test_latency_range_draws_within_it() -> None:
    sleeps = Recorder()
    injector = chaos.inject(latency=(0.1, 0.3), seed=3, enabled=True, sleep=sleeps)
    for _ in range(200):
        injector.point()
    assert len(sleeps.sleeps) == 200
    assert all(0.1 <= s <= 0.3 for s in sleeps.sleeps)
    assert len(set(sleeps.sleeps)) == 200
    assert injector.stats().latency == pytest.approx(sum(sleeps.sleeps))


def test_latency_advances_an_installed_fake_clock_instead_of_sleeping() -> None:
    clock = FakeClock()
    injector = chaos.inject(latency=30, enabled=True)
    with use_clock(clock):
        injector.point()
        assert clock.monotonic() == 30.0

        async def main() -> None:
            await injector.point_async()

        asyncio.run(main())
    assert clock.monotonic() == 60.0


def test_rate_zero_never_acts_and_rate_one_always_does() -> None:
    never = chaos.inject(fault=ValueError, rate=0, enabled=True)
    always = chaos.inject(fault=ValueError, rate=1, enabled=True)
    for _ in range(1000):
        never.point()
        with pytest.raises(ValueError, match=r"^$"):
            always.point()
    assert never.stats() == chaos.ChaosStats(1000, 0, 0.0)
    assert always.stats() == chaos.ChaosStats(1000, 1000, 0.0)
    assert always.stats().injection_rate == 1.0
    assert chaos.ChaosStats(0, 0, 0.0).injection_rate == 0.0


def test_base_exceptions_can_be_injected() -> None:
    async def work() -> str:
        return "done"

    wrapped = chaos.inject(fault=asyncio.CancelledError, enabled=True)(work)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(wrapped())


# -- the forms ---------------------------------------------------------------------------------


def test_the_decorator_keeps_the_signature_and_works_on_methods() -> None:
    class Client:
        def __init__(self) -> None:
            self.base = "https://api"

        @chaos.inject(fault=ConnectionError, rate=0.0, enabled=True)
        def get(self, path: str, *, timeout: float = 1.0) -> str:
            return f"{self.base}{path} {timeout}"

        @chaos.inject(fault=ConnectionError, rate=0.0, enabled=True)
        async def aget(self, path: str) -> str:
            return self.base + path

    client = Client()
    assert client.get("/x", timeout=2) == "https://api/x 2"
    assert asyncio.run(client.aget("/y")) == "https://api/y"
    assert (
        str(inspect.signature(Client.get))
        == "(self, path: 'str', *, timeout: 'float' = 1.0) -> 'str'"
    )
    assert inspect.iscoroutinefunction(Client.aget)
    assert Client.get.__name__ == "get"


async def test_async_decorator_sleeps_with_the_async_sleep_and_returns_results() -> None:
    sleeps = Recorder()
    calls = []

    async def fetch(n: int) -> int:
        calls.append(n)
        return n

    slow = chaos.inject(latency=1.5, enabled=True, async_sleep=sleeps.async_sleep)(fetch)
    canned = chaos.inject(result=-1, enabled=True)(fetch)
    failing = chaos.inject(fault=OSError("down"), enabled=True)(fetch)
    assert await slow(1) == 1
    assert await canned(2) == -1
    with pytest.raises(OSError, match="down"):
        await failing(3)
    assert calls == [1]
    assert sleeps.sleeps == [1.5]


async def test_async_latency_defaults_to_asyncio_sleep() -> None:
    injector = chaos.inject(latency=0.001, enabled=True)
    loop = asyncio.get_running_loop()
    before = loop.time()
    async with injector:
        pass
    assert loop.time() - before >= 0.001


def test_the_context_manager_guards_its_block() -> None:
    ran = []
    injector = chaos.inject(fault=ConnectionError, rate=0.5, seed=11, enabled=True)
    outcomes = []
    for i in range(40):
        try:
            with injector as entered:
                assert entered is injector
                ran.append(i)
            outcomes.append("ran")
        except ConnectionError:
            outcomes.append("fault")
    assert len(ran) == outcomes.count("ran")
    assert 0 < outcomes.count("fault") < 40
    assert injector.stats().injected == outcomes.count("fault")


def test_the_context_manager_never_swallows_the_blocks_errors() -> None:
    with pytest.raises(KeyError), chaos.inject(fault=ValueError, rate=0.0, enabled=True):
        raise KeyError("mine")


async def test_async_with_and_call_async() -> None:
    injector = chaos.inject(fault=ConnectionError, enabled=True)
    entered = False
    with pytest.raises(ConnectionError):
        async with injector:
            entered = True
    assert not entered

    async def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(ConnectionError):
        await injector.call_async(add, 1, 2)
    assert await chaos.inject(fault=ConnectionError, enabled=False).call_async(add, 1, 2) == 3
    assert await chaos.inject(result=7, enabled=True).call_async(add, 1, 2) == 7


def test_a_checkpoint_cannot_return_a_result() -> None:
    injector = chaos.inject(result=1, enabled=True)
    with pytest.raises(ConfigurationError, match="result= replaces a call's return value"):
        injector.point()
    with pytest.raises(ConfigurationError), injector:
        pass


def test_reset_replays_a_seeded_sequence() -> None:
    injector = chaos.inject(fault=ValueError, rate=0.3, seed=99, enabled=True)

    def run() -> list[bool]:
        outcomes = []
        for _ in range(300):
            try:
                injector.point()
                outcomes.append(False)
            except ValueError:
                outcomes.append(True)
        return outcomes

    first = run()
    assert injector.stats().calls == 300
    injector.reset()
    assert injector.stats() == chaos.ChaosStats(0, 0, 0.0)
    assert run() == first


def test_injected_faults_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    @chaos.inject(fault=ConnectionError("refused"), enabled=True)
    def fetch_quote() -> None:
        pass

    with (
        caplog.at_level(logging.DEBUG, logger="resilience_kit.chaos"),
        pytest.raises(OSError, match="refused"),
    ):
        fetch_quote()
    with (
        caplog.at_level(logging.DEBUG, logger="resilience_kit.chaos"),
        pytest.raises(OSError, match=r"^$"),
    ):
        chaos.inject(fault=OSError, enabled=True).point()
    assert [r.getMessage() for r in caplog.records] == [
        "chaos: raising ConnectionError('refused') in "
        "test_injected_faults_are_logged_at_debug.<locals>.fetch_quote",
        "chaos: raising OSError() in a checkpoint",
    ]


def test_repr_shows_the_configuration() -> None:
    assert repr(chaos.inject(fault=KeyError, rate=0.5)) == (
        "Injector(rate=0.5, fault=<class 'KeyError'>, enabled=False)"
    )
    assert repr(chaos.inject(latency=(1, 2), result=None, enabled=True)) == (
        "Injector(rate=1.0, latency=(1.0, 2.0), result=None, enabled=True)"
    )
    assert repr(chaos.inject(latency=3)) == "Injector(rate=1.0, latency=3.0, enabled=False)"


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter", "message"),
    [
        ({"fault": KeyError, "rate": -0.1}, "rate", "rate must be a finite number >= 0 and <= 1"),
        ({"fault": KeyError, "rate": 1.5}, "rate", "rate must be a finite number >= 0 and <= 1"),
        ({"fault": KeyError, "rate": float("nan")}, "rate", "rate must be a finite number"),
        ({"fault": KeyError, "rate": "0.5"}, "rate", "rate must be a finite number"),
        ({"latency": -1}, "latency", "latency must be a finite number >= 0, got -1"),
        ({"latency": float("inf")}, "latency", "latency must be a finite number >= 0"),
        (
            {"latency": (2, 1)},
            "latency",
            r"range with 0 <= low <= high, got \(2, 1\)",
        ),
        ({"latency": (-1, 1)}, "latency", r"got \(-1, 1\)"),
        ({"latency": (1,)}, "latency", r"got \(1,\)"),
        ({"latency": (0, "1")}, "latency", r"got \(0, '1'\)"),
        ({"fault": "boom"}, "fault", "fault must be an exception class or instance, got 'boom'"),
        ({"fault": int}, "fault", "fault must be an exception class or instance, got <class"),
        ({"fault": KeyError, "result": 1}, "result", "fault and result are exclusive"),
        ({}, "fault", "needs something to inject: fault, latency or result"),
        ({"rate": 0.5}, "fault", "needs something to inject"),
        ({"fault": KeyError, "seed": "x"}, "seed", "seed must be an int or None, got 'x'"),
        ({"fault": KeyError, "seed": True}, "seed", "seed must be an int or None, got True"),
        ({"fault": KeyError, "seed": 1.5}, "seed", "seed must be an int or None"),
        ({"fault": KeyError, "enabled": "yes"}, "enabled", "enabled must be True, False or None"),
        ({"fault": KeyError, "sleep": 5}, "sleep", "sleep must be a callable or None, got 5"),
        ({"fault": KeyError, "async_sleep": 1}, "async_sleep", "async_sleep must be a callable"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_parameter(
    kwargs: dict[str, Any], parameter: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        chaos.inject(**kwargs)
    assert caught.value.parameter == parameter


def test_good_edge_values_are_accepted() -> None:
    chaos.inject(fault=KeyError, rate=0)
    chaos.inject(fault=KeyError("k"), rate=1)
    chaos.inject(latency=0)
    chaos.inject(latency=(0, 0), seed=-5)
    chaos.inject(result=None)


# -- concurrency -------------------------------------------------------------------------------


def _count_faults(injector: chaos.Injector, calls: int) -> int:
    faults = 0
    for _ in range(calls):
        try:
            injector.point()
        except ConnectionError:
            faults += 1
    return faults


def test_counts_are_exact_and_the_seeded_total_holds_across_threads() -> None:
    threads, per_thread = 8, 5_000
    sequential = _count_faults(
        chaos.inject(fault=ConnectionError, rate=0.3, seed=5, enabled=True), threads * per_thread
    )
    injector = chaos.inject(fault=ConnectionError, rate=0.3, seed=5, enabled=True)
    faults = [0] * threads
    barrier = threading.Barrier(threads)

    def worker(i: int) -> None:
        barrier.wait()
        faults[i] = _count_faults(injector, per_thread)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    # One lock serialises the draws, so the threads consume the seeded sequence exactly once.
    assert sum(faults) == sequential
    assert injector.stats() == chaos.ChaosStats(threads * per_thread, sequential, 0.0)


async def test_thousands_of_tasks_with_latency() -> None:
    clock = FakeClock()
    injector = chaos.inject(
        latency=0.5, rate=0.25, seed=8, enabled=True, async_sleep=clock.async_sleep
    )

    @injector
    async def handler(i: int) -> int:
        await asyncio.sleep(0)
        return i

    results = await asyncio.gather(*(handler(i) for i in range(5_000)))
    assert results == list(range(5_000))
    stats = injector.stats()
    assert stats.calls == 5_000
    assert clock.monotonic() == pytest.approx(stats.injected * 0.5)
    assert stats.latency == pytest.approx(stats.injected * 0.5)


# -- review fixes: async callables and generators --------------------------------------------


class _AsyncClient:
    """An API client object: its class has ``async def __call__``."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def __call__(self, x: int) -> int:
        self.calls.append(x)
        return x * 10


async def test_an_async_callable_object_is_awaited_and_its_latency_is_async() -> None:
    sync_sleeps, async_sleeps = Recorder(), Recorder()
    client = _AsyncClient()
    slow = chaos.inject(
        latency=0.3, enabled=True, sleep=sync_sleeps, async_sleep=async_sleeps.async_sleep
    )(client)
    assert inspect.iscoroutinefunction(slow)
    assert await slow(2) == 20
    # The sync wrapper would have slept (on the event loop) and handed back the coroutine.
    assert sync_sleeps.sleeps == []
    assert async_sleeps.sleeps == [0.3]
    assert slow.__name__ == "_AsyncClient"


async def test_a_fault_in_an_async_callable_object_is_raised_by_the_await() -> None:
    client = _AsyncClient()
    failing = chaos.inject(fault=ConnectionError, enabled=True)(client)
    pending = failing(1)  # creating the coroutine does not raise: awaiting it does
    with pytest.raises(ConnectionError):
        await pending
    canned = chaos.inject(result=-1, enabled=True)(functools.partial(client, 5))
    assert await canned() == -1
    assert client.calls == []


async def test_static_and_class_methods_are_wrapped_inside() -> None:
    class Api:
        @chaos.inject(result="canned", enabled=True)
        @staticmethod
        async def fetch(path: str) -> str:
            return path

        @chaos.inject(result="canned", enabled=True)
        @classmethod
        async def build(cls, path: str) -> str:
            return cls.__name__ + path

    assert await Api.fetch("/x") == "canned"
    assert await Api().build("/y") == "canned"
    assert inspect.iscoroutinefunction(Api.fetch)


def _generator() -> Iterator[int]:
    yield 1


async def _async_generator() -> AsyncIterator[int]:
    yield 1


class _GeneratorObject:
    def __call__(self) -> Iterator[int]:
        yield 1


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (_generator, "generator function"),
        (_async_generator, "async generator function"),
        (functools.partial(_generator), "generator function"),
        (_GeneratorObject(), "generator function"),
    ],
)
@pytest.mark.parametrize("enabled", [True, False, None])
def test_generator_functions_are_refused_naming_fn(
    fn: Any, kind: str, enabled: bool | None
) -> None:
    with pytest.raises(ConfigurationError, match=f"cannot decorate the {kind}") as caught:
        chaos.inject(result=[9], enabled=enabled)(fn)
    assert caught.value.parameter == "fn"
    assert caught.value.value is fn


def test_a_checkpoint_inside_a_generator_injects_where_it_runs() -> None:
    injector = chaos.inject(fault=ConnectionError, enabled=True)

    def rows() -> Iterator[int]:
        yield 1
        injector.point()
        yield 2

    stream = rows()
    assert next(stream) == 1
    with pytest.raises(ConnectionError):
        next(stream)


# -- review fixes: faults that need arguments, copies that share nothing ---------------------


class _CodeError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _HTTPStatusError(Exception):
    """Like httpx's: keyword-only constructor arguments, so ``copy.copy`` cannot rebuild it."""

    def __init__(self, message: str, *, request: object, response: object) -> None:
        super().__init__(message)
        self.request = request
        self.response = response


def test_a_fault_class_that_needs_arguments_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="built with no arguments") as caught:
        chaos.inject(fault=_CodeError, enabled=True)
    assert caught.value.parameter == "fault"
    assert caught.value.value is _CodeError
    assert isinstance(caught.value.__cause__, TypeError)
    chaos.inject(fault=_CodeError(503), enabled=True)  # what the message suggests


def _raise_three(injector: chaos.Injector) -> list[BaseException]:
    raised = []
    for _ in range(3):
        with pytest.raises(BaseException) as caught:  # noqa: PT011 - the type is the subject
            injector.point()
        raised.append(caught.value)
    return raised


def test_an_instance_with_keyword_only_arguments_is_copied_without_init() -> None:
    request, response = object(), {"status": 503}
    template = _HTTPStatusError("503 Service Unavailable", request=request, response=response)
    raised = _raise_three(chaos.inject(fault=template, enabled=True))
    assert len({id(error) for error in [template, *raised]}) == 4
    for error in raised:
        assert type(error) is _HTTPStatusError
        assert error.args == ("503 Service Unavailable",)
        assert str(error) == "503 Service Unavailable"
        assert error.request is request  # type: ignore[attr-defined]
        assert error.response is response  # shallow, as documented  # type: ignore[attr-defined]
        assert error.__traceback__ is not None
    assert raised[0].__traceback__ is not raised[1].__traceback__
    assert template.__traceback__ is None


def test_an_os_error_with_keyword_only_arguments_keeps_errno_and_strerror() -> None:
    class RefusedError(OSError):
        def __init__(self, *, host: str) -> None:
            super().__init__(111, "refused")
            self.host = host

    (error, *_) = _raise_three(chaos.inject(fault=RefusedError(host="db"), enabled=True))
    assert isinstance(error, RefusedError)
    assert (error.errno, error.strerror, error.host) == (111, "refused", "db")
    assert str(error) == "[Errno 111] refused"


@pytest.mark.parametrize(
    "template",
    [ConnectionError("refused"), _HTTPStatusError("503", request=None, response=None)],
    ids=["copyable", "keyword-only"],
)
def test_injected_faults_have_no_cause_or_context_of_the_template(template: Exception) -> None:
    try:
        try:
            raise KeyError("earlier")
        except KeyError as earlier:
            raise template from earlier
    except Exception:  # noqa: S110 - only to give the template a cause, context and traceback
        pass
    assert template.__cause__ is not None
    assert template.__context__ is not None
    for error in _raise_three(chaos.inject(fault=template, enabled=True)):
        assert error.__cause__ is None
        assert error.__context__ is None
        assert not error.__suppress_context__
        assert error.__traceback__ is not template.__traceback__


def _add_note(error: BaseException, note: str) -> None:
    """``error.add_note(note)``, also on 3.10, where tools such as exceptiongroup set the list."""
    notes = getattr(error, "__notes__", None)
    if notes is None:
        notes = []
        error.__notes__ = notes  # type: ignore[attr-defined]
    notes.append(note)


@pytest.mark.parametrize(
    "template",
    [ConnectionError("refused"), _HTTPStatusError("503", request=None, response=None)],
    ids=["copyable", "keyword-only"],
)
def test_notes_added_to_an_injected_fault_stay_on_it(template: Exception) -> None:
    _add_note(template, "injected by chaos")
    injector = chaos.inject(fault=template, enabled=True)
    raised = []
    for i in range(3):
        try:
            injector.point()
        except Exception as error:
            _add_note(error, f"while handling request {i}")
            raised.append(error)
    assert [error.__notes__ for error in raised] == [
        ["injected by chaos", f"while handling request {i}"] for i in range(3)
    ]
    assert template.__notes__ == ["injected by chaos"]


def test_a_fault_without_notes_gets_none() -> None:
    (error, *_) = _raise_three(chaos.inject(fault=ConnectionError("x"), enabled=True))
    assert not hasattr(error, "__notes__")


# -- review fixes: switches that overlap without nesting -------------------------------------


def test_overlapping_enable_blocks_do_not_undo_each_other() -> None:
    first, second = chaos.enable(), chaos.enable()
    first.__exit__(None, None, None)  # the first one ends while the second is still open
    assert chaos.is_enabled()
    second.__exit__(None, None, None)
    assert not chaos.is_enabled()


def test_the_newest_switch_in_effect_decides() -> None:
    with chaos.enable():
        with chaos.disable():
            assert not chaos.is_enabled()
            with chaos.enable():
                assert chaos.is_enabled()
            assert not chaos.is_enabled()
        assert chaos.is_enabled()
    off, on = chaos.disable(), chaos.enable()
    off.__exit__(None, None, None)  # ended out of order: `on` is still the newest
    assert chaos.is_enabled()
    on.__exit__(None, None, None)
    assert not chaos.is_enabled()


def test_leaving_a_block_twice_is_harmless() -> None:
    outer = chaos.enable()
    inner = chaos.disable()
    inner.__exit__(None, None, None)
    inner.__exit__(None, None, None)
    assert chaos.is_enabled()
    outer.__exit__(None, None, None)
    assert not chaos.is_enabled()


def test_threads_ending_their_blocks_in_entry_order_keep_the_others_on() -> None:
    threads = 6
    entered = [threading.Event() for _ in range(threads)]
    may_leave = [threading.Event() for _ in range(threads)]
    left = [threading.Event() for _ in range(threads)]

    def worker(i: int) -> None:
        with chaos.enable():
            entered[i].set()
            may_leave[i].wait()
        left[i].set()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for i, thread in enumerate(pool):
        thread.start()
        entered[i].wait()
    seen = []
    for i in range(threads):
        may_leave[i].set()
        left[i].wait()
        seen.append(chaos.is_enabled())
    for thread in pool:
        thread.join()
    assert seen == [True] * (threads - 1) + [False]


def test_racing_enable_blocks_leave_the_switch_as_they_found_it() -> None:
    threads, rounds = 8, 1_000
    barrier = threading.Barrier(threads)
    inside_off: list[int] = []

    def worker() -> None:
        barrier.wait()
        for _ in range(rounds):
            with chaos.enable():
                time.sleep(0)  # let another thread in while this block is open
                if not chaos.is_enabled():
                    inside_off.append(1)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert inside_off == []
    assert not chaos.is_enabled()


def test_snapshot_and_restore_bracket_a_test() -> None:
    with chaos.enable():
        state = chaos._snapshot()
        loose = chaos.disable()  # a test that forgets to end its switch ...
        chaos.disable()
        assert not chaos.is_enabled()
        chaos._restore(state)  # ... cannot leak it past the restore
        assert chaos.is_enabled()
        loose.__exit__(None, None, None)  # dropped by the restore: ending it does nothing
        assert chaos.is_enabled()
    assert not chaos.is_enabled()
    chaos._restore(state)  # switches in effect at the snapshot come back
    assert chaos.is_enabled()


def test_restore_takes_only_a_snapshot() -> None:
    with pytest.raises(TypeError, match=r"what chaos\._snapshot\(\) returned"):
        chaos._restore(())
