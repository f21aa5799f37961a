"""Breakers in different processes share one circuit through Redis (fakeredis here)."""

from __future__ import annotations

import asyncio
import threading

import fakeredis
import pytest
from shared_support import CountingScript, fail, succeed

from polling import until
from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage
from resilience_kit.testing import FakeClock

OPEN, CLOSED = CircuitState.OPEN, CircuitState.CLOSED


def test_failures_in_different_processes_add_up(process) -> None:
    first, second = process(failure_threshold=3), process(failure_threshold=3)
    fail(first, 2)
    assert first.state is CLOSED
    fail(second)
    assert second.state is OPEN
    assert until(lambda: first.state is OPEN)  # told by the announcement, no call needed
    with pytest.raises(CircuitOpenError):
        first.call(lambda: None)


def test_a_success_anywhere_ends_the_run_of_failures(process) -> None:
    first, second = process(failure_threshold=3), process(failure_threshold=3)
    fail(first, 2)
    assert until(lambda: second.stats().failure_count == 2)
    succeed(second)
    fail(first, 2)
    assert first.state is CLOSED  # 2 + (reset) + 2: never 3 in a row


def test_a_new_breaker_reads_the_shared_state_before_its_first_call(
    process, storage_factory
) -> None:
    fail(process(failure_threshold=2), 2)
    storage = storage_factory()
    storage.close()  # no announcement can help: the first call itself must read
    late = process(failure_threshold=2, storage=storage)
    ran = []
    with pytest.raises(CircuitOpenError):
        late.call(lambda: ran.append(1))
    assert ran == []


def test_keys_carry_one_hash_tag_per_breaker_and_a_ttl(process, server, prefix) -> None:
    fail(process("alpha", failure_threshold=5))
    fail(process("beta", failure_rate=0.5, minimum_calls=1))  # opens: state and window
    client = fakeredis.FakeRedis(server=server)
    keys = sorted(key.decode() for key in client.keys("*"))
    assert keys == [
        f"{{{prefix}:breaker:alpha}}:state",
        f"{{{prefix}:breaker:beta}}:state",
        f"{{{prefix}:breaker:beta}}:window",
    ]
    assert all(0 < client.ttl(key) <= 7 * 24 * 3600 for key in keys)


def test_names_never_touch_each_other(process) -> None:
    fail(process("alpha", failure_threshold=1))
    beta = process("beta", failure_threshold=1)
    succeed(beta)
    assert beta.state is CLOSED


def test_prefixes_are_separate_circuits(storage_factory, process) -> None:
    fail(process(failure_threshold=1, storage=storage_factory(prefix="one")))
    other = process(failure_threshold=1, storage=storage_factory(prefix="two"))
    succeed(other)
    assert other.state is CLOSED


def test_the_failure_rate_window_counts_every_process(storage_factory, process) -> None:
    config = {"failure_rate": 0.5, "minimum_calls": 4, "window": 10}
    first = process(storage=storage_factory(flush_interval=0), **config)
    second = process(storage=storage_factory(flush_interval=0), **config)
    succeed(first, 2)
    fail(second)
    assert first.state is CLOSED
    fail(first)  # alone, first has seen 3 calls (< minimum_calls); the fleet has seen 4
    assert first.state is OPEN
    assert until(lambda: second.state is OPEN)


def test_successes_are_batched_under_the_failure_rate_policy(storage_factory, process) -> None:
    storage = storage_factory(flush_interval=3600)
    breaker = process(storage=storage, failure_rate=0.5, minimum_calls=100)
    sent: list[str] = []
    storage.script = CountingScript(storage.script, sent, only=threading.get_ident())
    succeed(breaker, 50)
    assert sent.count("record") == 1  # the first success; the rest wait for the interval
    fail(breaker)
    assert sent.count("record") == 2  # the failure takes the 49 waiting successes along
    assert breaker.stats().failure_count == 1
    assert breaker.stats().failure_rate == pytest.approx(1 / 51)


def test_manual_controls_reach_every_process(process) -> None:
    first, second = process(), process()
    succeed(second)
    first.force_open()
    assert until(lambda: second.state is CircuitState.FORCED_OPEN)
    second.reset()
    assert until(lambda: first.state is CLOSED)
    first.disable()
    assert until(lambda: second.state is CircuitState.DISABLED)


def test_listeners_hear_transitions_made_elsewhere(process, storage_factory) -> None:
    heard: list[tuple[str, str, str]] = []

    class Listener:
        def on_state_change(self, breaker, old, new, cause: str = "") -> None:
            heard.append((str(old), str(new), cause))

    elsewhere = process(failure_threshold=1)
    watcher = CircuitBreaker(
        "dep", failure_threshold=1, storage=storage_factory(), listeners=[Listener()]
    )
    succeed(watcher)
    fail(elsewhere)
    assert until(lambda: heard == [("CLOSED", "OPEN", "shared state changed in Redis")])
    watcher.unregister()


def test_a_late_answer_never_overwrites_a_newer_view(process) -> None:
    from resilience_kit.breaker._redis.cell import parse_snapshot

    breaker = process(failure_threshold=1)
    succeed(breaker)
    cell = breaker._cell
    incarnation, version = cell.view
    stale = parse_snapshot(f"{version - 1}\n{incarnation}\nOPEN\n0\n\n60000000\n1\n0\n9\n0")
    cell.apply(stale, 0.0)
    assert breaker.state is CLOSED
    newer = parse_snapshot(f"{version + 1}\n{incarnation}\nFORCED_OPEN\n0\n0\n60000000\n0\n0\n9\n0")
    cell.apply(newer, 0.0)
    assert breaker.state is CircuitState.FORCED_OPEN


def test_scripts_are_reloaded_after_a_script_flush(process, server) -> None:
    first = process(failure_threshold=2)
    fail(first)
    fakeredis.FakeRedis(server=server).script_flush()
    fail(first)
    assert first.state is OPEN
    assert first.stats().store_errors == 0


def test_timing_follows_the_store_clock_not_the_callers(storage_factory, process) -> None:
    clock = FakeClock(1000.0)
    storage = storage_factory(clock=clock)
    breaker = process(failure_threshold=1, recovery_timeout=30, storage=storage, clock=clock)
    fail(breaker)
    clock.advance(29.9)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    clock.advance(0.1)
    succeed(breaker)
    assert breaker.state is CLOSED


def test_asyncio_clients_share_state_too(server, prefix) -> None:
    async def scenario() -> tuple[CircuitState, CircuitState]:
        first_storage = RedisStorage(
            fakeredis.FakeAsyncRedis(server=server), prefix=prefix, resync_interval=0.1
        )
        second_storage = RedisStorage(
            fakeredis.FakeAsyncRedis(server=server), prefix=prefix, resync_interval=0.1
        )
        first = CircuitBreaker("dep", failure_threshold=2, storage=first_storage)
        first.unregister()
        second = CircuitBreaker("dep", failure_threshold=2, storage=second_storage)
        second.unregister()

        async def boom() -> None:
            raise ValueError("down")

        async def ok() -> int:
            return 1

        assert await second.call_async(ok) == 1
        for breaker in (first, second):
            with pytest.raises(ValueError, match="down"):
                await breaker.call_async(boom)
        state = second.state
        await asyncio.sleep(0.2)  # no subscriber here: its next call resynchronises
        with pytest.raises(CircuitOpenError):
            await first.call_async(ok)
        first_storage.close()
        second_storage.close()
        return state, first.state

    assert asyncio.run(scenario()) == (OPEN, OPEN)


def test_a_forked_process_starts_its_own_subscriber(process) -> None:
    """What a pre-forking server's child goes through, without forking a threaded test
    process: the fork hook runs, and the parent's subscriber is not this process's."""
    from resilience_kit.breaker._redis import storage as module

    watcher, actor = process(failure_threshold=1), process(failure_threshold=1)
    succeed(watcher)
    parents = watcher.storage._listener
    assert parents is not None
    assert watcher.storage.listening
    parents.stop()  # the thread that does not survive a fork
    parents.pid = -1  # ...as seen from the child
    module._after_fork()
    assert not watcher._cell.clean  # its next call reads and starts a subscriber
    succeed(watcher)
    assert watcher.storage._listener is not parents
    fail(actor)
    assert until(lambda: watcher._machine.state is OPEN)  # heard through the new one


def test_a_breaker_in_use_keeps_its_keys_alive(storage_factory, process, server, prefix) -> None:
    """The TTL is for abandoned breakers: one still read by a live process (a FORCED_OPEN
    one left in maintenance for weeks, say) must not lose its state to it."""
    storage = storage_factory(resync_interval=3600)
    breaker = process(storage=storage)
    breaker.force_open()
    storage.close()  # the test drives the resynchronisation itself
    client = fakeredis.FakeRedis(server=server)
    key = f"{{{prefix}:breaker:dep}}:state"
    client.expire(key, 60)  # days without a write have passed
    storage.resync(client)  # a live process reads it
    assert client.ttl(key) > 3 * 24 * 3600
    client.expire(key, 6 * 24 * 3600)
    storage.resync(client)  # no need to write yet: most of a week is left
    assert client.ttl(key) <= 6 * 24 * 3600
    assert client.hget(key, "s") == b"FORCED_OPEN"
