"""Fault injection: the forms, the switches, the outcomes, validation and the counts."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from resilience_kit import chaos
from resilience_kit.errors import ConfigurationError
from resilience_kit.testing import FakeClock, use_clock


@pytest.fixture(autouse=True)
def _switch_off() -> Iterator[None]:
    """Every test starts with the process switch off, whatever the environment says."""
    with chaos.disable():
        yield


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
    class Picky(Exception):
        def __init__(self, code: int, *, where: str) -> None:
            super().__init__(code)
            self.where = where

    with pytest.raises(ConfigurationError, match="copyable exception instance") as caught:
        chaos.inject(fault=Picky(5, where="db"))
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
