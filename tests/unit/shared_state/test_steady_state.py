"""No Redis command per call in steady state; Redis only when the shared state must change."""

from __future__ import annotations

import threading

import pytest
from shared_support import CountingScript, converged, fail, succeed

from polling import until
from resilience_kit import CircuitOpenError, CircuitState


@pytest.fixture
def counted(storage_factory):
    """A storage whose script calls made by this thread are recorded by operation (the
    subscriber thread's resynchronisation, once a second whatever the traffic, is not)."""
    storage = storage_factory()
    sent: list[str] = []
    storage.script = CountingScript(storage.script, sent, only=threading.get_ident())
    return storage, sent


def test_successes_in_closed_state_send_nothing(counted, process) -> None:
    storage, sent = counted
    breaker = process(storage=storage)

    @breaker
    def work() -> int:
        return 1

    assert work() == 1  # the first call reads the shared state
    assert sent == ["acquire"]
    assert breaker._cell.clean  # the sync fast path is open again
    for _ in range(1000):
        work()
    assert sent == ["acquire"]


def test_each_failure_is_in_the_store_when_the_call_returns(counted, process, server) -> None:
    import fakeredis

    storage, _sent = counted
    breaker = process(storage=storage, failure_threshold=10)

    @breaker
    def broken() -> None:
        raise ValueError("down")

    client = fakeredis.FakeRedis(server=server)
    key = f"{{{storage.prefix}:breaker:dep}}:state"
    for expected in (1, 2, 3):
        with pytest.raises(ValueError, match="down"):
            broken()  # the fast path: the failure goes out before the call returns
        assert client.hget(key, "f") == str(expected).encode()


def test_rejections_while_open_send_nothing(counted, process) -> None:
    storage, sent = counted
    breaker = process(storage=storage, failure_threshold=1, recovery_timeout=60)
    fail(breaker)
    before = len(sent)
    for _ in range(100):
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)
    assert len(sent) == before


def test_only_the_success_that_ends_a_run_of_failures_is_sent(counted, process) -> None:
    storage, sent = counted
    breaker = process(storage=storage, failure_threshold=5)
    fail(breaker, 2)
    del sent[:]
    succeed(breaker, 10)
    assert sent == ["record"]
    assert breaker.state is CircuitState.CLOSED


def test_a_success_on_the_fast_path_that_ends_a_run_is_sent(counted, process) -> None:
    """A call admitted on the fast path while a failure is recorded meanwhile: its success
    ends the run in Redis too, before it returns."""
    storage, sent = counted
    breaker = process(storage=storage, failure_threshold=5)
    other = process(failure_threshold=5)

    @breaker
    def work() -> int:
        fail(other)  # while this call runs, a failure is recorded in Redis...
        assert converged([breaker], CircuitState.CLOSED)
        until(lambda: breaker.stats().failure_count == 1)  # ...and announced here
        return 1

    assert work() == 1
    assert sent[-1] == "record"
    assert breaker.stats().failure_count == 0
    assert other.call(lambda: 2) == 2
    assert until(lambda: other.stats().failure_count == 0)
