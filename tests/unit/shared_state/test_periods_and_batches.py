"""Outcomes count only in the period they were admitted in, in Redis too; resynchronising and
sending batched successes are pipelined (fakeredis here; the Cluster's per-node pipelines are
in tests/integration/test_shared_asyncio_clients.py)."""

from __future__ import annotations

import threading

import fakeredis
import pytest
from shared_support import CountingScript, converged, fail, succeed

from polling import until
from resilience_kit import CircuitState

CLOSED = CircuitState.CLOSED


def _window(server: fakeredis.FakeServer, prefix: str, name: str = "dep") -> tuple[int, int]:
    """(calls, failures) in the shared failure-rate window."""
    fields = fakeredis.FakeRedis(server=server).hgetall(f"{{{prefix}:breaker:{name}}}:window")
    calls = sum(int(v) for k, v in fields.items() if k.startswith(b"c"))
    failed = sum(int(v) for k, v in fields.items() if k.startswith(b"f"))
    return calls, failed


RATE = {"failure_rate": 0.5, "minimum_calls": 1000, "window": 60}


def test_batched_successes_of_an_earlier_period_count_nowhere(
    storage_factory, process, server, prefix
) -> None:
    """Issue 10's rule, shared: successes admitted before a transition and sent after it
    (they wait for the batch) are not counted in the new period's window."""
    storage = storage_factory(flush_interval=3600)
    first = process(storage=storage, **RATE)
    second = process(**RATE)
    succeed(first, 5)  # the first is sent at once, four wait for the batch
    assert _window(server, prefix) == (1, 0)
    second.force_open()
    second.reset()  # a new CLOSED period, announced
    assert until(lambda: first._machine.remote_epoch == second._machine.remote_epoch)
    assert converged([first], CLOSED)
    fail(first)  # sends what waits with it: the four successes are of the old period
    assert _window(server, prefix) == (1, 1)
    assert first.stats().failure_rate == pytest.approx(1.0)


def test_a_stale_view_cannot_count_old_outcomes_in_the_new_period(
    storage_factory, process, server, prefix
) -> None:
    """The process never heard of the transition (no subscriber, no resync due): Redis
    itself refuses outcomes tagged with an epoch that is over."""
    storage = storage_factory(flush_interval=3600, resync_interval=3600)
    first = process(storage=storage, **RATE)
    succeed(first, 3)
    storage.close()  # deaf from here on
    other = process(**RATE)
    other.force_open()
    other.reset()
    before = _window(server, prefix)
    assert before == (0, 0)  # the reset emptied the window
    fail(first)  # its view is of the old period: the failure and two successes go with it
    assert _window(server, prefix) == (0, 0)
    assert first._machine.remote_epoch == other._machine.remote_epoch  # the answer taught it


def test_the_consecutive_policy_drops_a_pending_reset_of_an_earlier_period(
    storage_factory, process, server, prefix
) -> None:
    storage = storage_factory()
    first = process(storage=storage, failure_threshold=3)
    fail(first)
    machine = first._machine
    with first._lock:  # a success that ended the run, noted but not yet sent (async fast path)
        machine.pending_ok, machine.pending_epoch = 1, machine.remote_epoch
    other = process(failure_threshold=3)
    other.force_open()
    other.reset()
    fail(other, 2)
    # Sent before the transition by the subscriber, or dropped by it: never in the new period.
    assert until(lambda: machine.remote_epoch == other._machine.remote_epoch)
    assert until(lambda: first.stats().failure_count == 2)
    assert machine.pending_ok == 0
    fail(first)
    key = f"{{{prefix}:breaker:dep}}:state"
    assert fakeredis.FakeRedis(server=server).hget(key, "s") == b"OPEN"  # 2 + 1, not reset


def _counting_pipelines(client: fakeredis.FakeRedis, executed: list[int]) -> None:
    """Record the size of every pipeline ``client`` executes."""
    make = client.pipeline

    def pipeline(*args, **kwargs):
        pipe = make(*args, **kwargs)
        run = pipe.execute

        def execute(*a, **k):
            executed.append(len(pipe.command_stack))
            return run(*a, **k)

        pipe.execute = execute
        return pipe

    client.pipeline = pipeline


def test_a_resync_of_a_thousand_breakers_is_one_round_trip(
    server, prefix, storage_factory, process
) -> None:
    storage = storage_factory(resync_interval=3600)
    breakers = [process(f"dep{index}", storage=storage) for index in range(1000)]
    storage.close()  # the test drives the resynchronisation itself
    client = fakeredis.FakeRedis(server=server)
    executed: list[int] = []
    _counting_pipelines(client, executed)
    sent: list[str] = []
    storage.script = CountingScript(storage.script, sent)
    storage.resync(client)
    assert executed == [1000]  # one pipeline: one round trip for every breaker
    assert sent == ["read"] * 1000
    assert all(breaker._cell.view is not None for breaker in breakers)


def test_the_subscriber_sends_batched_successes_in_one_pipeline(
    server, prefix, storage_factory, process
) -> None:
    storage = storage_factory(flush_interval=0)
    breakers = [process(f"dep{index}", storage=storage, **RATE) for index in range(50)]
    storage.close()
    for breaker in breakers:
        succeed(breaker)  # sent at once: the first success of each breaker
    for breaker in breakers:
        with breaker._lock:  # as an async call's fast path leaves them: noted, not sent
            breaker._machine.success(0.0, breaker._machine.period)
    client = fakeredis.FakeRedis(server=server)
    executed: list[int] = []
    _counting_pipelines(client, executed)
    storage.flush(client)
    assert executed == [50]
    assert all(_window(server, prefix, f"dep{index}") == (2, 0) for index in range(50))
    storage.flush(client)
    assert executed == [50]  # nothing left to send: no round trip at all


def test_the_subscriber_thread_flushes_what_no_call_came_to_send(
    storage_factory, process, server, prefix
) -> None:
    storage = storage_factory(flush_interval=1.0)
    sent: list[str] = []
    storage.script = CountingScript(storage.script, sent, only=threading.get_ident())
    breaker = process(storage=storage, **RATE)
    succeed(breaker, 20)  # the first is sent; the others wait for the batch
    assert _window(server, prefix) == (1, 0)
    assert until(lambda: _window(server, prefix) == (20, 0))  # sent by the subscriber
    assert sent == ["acquire", "record"]  # this thread sent only the first


def test_reading_stats_does_not_keep_rate_window_successes_in_the_process(
    storage_factory, process, server, prefix
) -> None:
    """The in-process rate window counts successes lock-free once ``stats()`` has turned it;
    a shared breaker must send every one to Redis all the same."""
    breaker = process(storage=storage_factory(flush_interval=0), **RATE)

    @breaker
    def work() -> int:
        return 1

    work()
    breaker.stats()
    for _ in range(9):
        work()
        breaker.stats()
    assert until(lambda: _window(server, prefix) == (10, 0))
