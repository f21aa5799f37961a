"""Late and out-of-order news of the shared state: announcements delayed past newer ones, an
announcement delayed on the server's clock, a state that is gone, and a store that went back to
an older version of the same state (writes lost in a failover to a lagging replica, or a
restart from an older dump) while the connections stayed up.

An announcement is applied as if it arrived the moment it was sent: a delay keeps the local
view OPEN longer, never shorter, and Redis, which grants every trial, has the last word. None
of these may leave a view admitting calls the shared state rejects, or stuck in a state.
"""

from __future__ import annotations

import logging

import fakeredis
import pytest
from shared_support import converged, fail, succeed

from polling import until
from resilience_kit import CircuitOpenError, CircuitState
from resilience_kit.breaker._redis.cell import MICRO, SNAPSHOT_FIELDS
from resilience_kit.testing import FakeClock

OPEN, CLOSED, HALF_OPEN = CircuitState.OPEN, CircuitState.CLOSED, CircuitState.HALF_OPEN


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def pair(storage_factory, process, clock):
    """Two processes on the fake clock (Redis times follow it too): a watcher and an actor."""

    def make(**config):
        config = {"recovery_timeout": 10, "clock": clock, **config}
        return [process(storage=storage_factory(clock=clock), **config) for _ in range(2)]

    return make


@pytest.fixture
def client(server) -> fakeredis.FakeRedis:
    """The test's own connection to the fake server (an operator's, or a failover's)."""
    return fakeredis.FakeRedis(server=server)


class Announcements:
    """Every announcement published on ``channel``, in order, kept to be replayed late."""

    def __init__(self, client: fakeredis.FakeRedis, channel: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self.seen: list[str] = []

    def collect(self) -> list[str]:
        while (message := self._pubsub.get_message(timeout=0.05)) is not None:
            self.seen.append(message["data"].decode())
        return self.seen

    def states(self) -> list[str]:
        return [text.split("\n")[-SNAPSHOT_FIELDS + 2] for text in self.collect()]


def _rejected(breaker) -> bool:
    try:
        breaker.call(lambda: None)
    except CircuitOpenError:
        return True
    return False


def test_half_open_and_closed_announcements_delayed_past_a_newer_opening_change_nothing(
    pair, client, clock
) -> None:
    watcher, actor = pair(failure_threshold=1)
    heard = Announcements(client, watcher.storage.channel)
    succeed(watcher)
    fail(actor)
    clock.advance(10)
    succeed(actor)  # the trial: HALF_OPEN, then CLOSED
    fail(actor)  # OPEN again, the newest state
    assert until(lambda: heard.states() == ["OPEN", "HALF_OPEN", "CLOSED", "OPEN"])
    assert converged([watcher], OPEN)
    newest = watcher._cell.view
    for late in heard.seen[:3]:  # delivered again, after the newer OPEN
        watcher.storage.receive(late)
    assert watcher._cell.view == newest
    assert watcher._machine.state is OPEN
    assert _rejected(watcher)


def test_an_opening_announced_late_on_the_server_clock_never_admits_early_nor_sticks(
    process, client
) -> None:
    """A message that took longer than the whole timeout to arrive: the local view stays OPEN
    for the timeout from its arrival (it cannot know the delay), then asks Redis, which is
    HALF_OPEN by then and grants the trial."""
    watcher = process(failure_threshold=1, recovery_timeout=0.2)
    actor = process(failure_threshold=1, recovery_timeout=0.2)
    storage = watcher.storage
    succeed(watcher)
    storage.close()  # the announcement reaches the watcher only when the test delivers it
    heard = Announcements(client, storage.channel)
    fail(actor)
    assert until(lambda: heard.states() == ["OPEN"])
    lines = heard.seen[0].split("\n")
    lines[-1] = str(int(lines[-1]) - round(0.5 * MICRO))  # sent half a second ago
    storage.receive("\n".join(lines))
    assert watcher._machine.state is OPEN
    assert watcher.stats().retry_after > 0  # never shorter than the store's period
    assert until(lambda: not _rejected(watcher), 5)  # the trial, granted by Redis: CLOSED
    assert watcher._machine.state is CLOSED


def test_an_announcement_of_a_state_that_is_gone_lasts_until_the_next_resync(
    process, client, prefix
) -> None:
    """The keys were lost (evicted, flushed, a restart without persistence) and a new state
    has opened since; an announcement of the old one arrives late. The channel delivers the
    new state's own announcements after it, and a resync reads the new state anyway."""
    watcher = process(failure_threshold=2)
    actor = process(failure_threshold=2)
    heard = Announcements(client, watcher.storage.channel)
    succeed(watcher)
    fail(actor)  # the old state: CLOSED with one failure
    assert until(lambda: heard.states() == ["CLOSED"])
    old = heard.seen[0]
    client.delete(*client.keys(f"{{{prefix}:breaker:dep}}:*"))
    fail(actor, 2)  # a new state: OPEN
    assert converged([watcher], OPEN)
    watcher.storage.receive(old)
    watcher.storage.resync(watcher.storage.client)
    assert watcher._machine.state is OPEN
    assert _rejected(watcher)


def _state(client, prefix: str) -> dict[bytes, bytes]:
    return client.hgetall(f"{{{prefix}:breaker:dep}}:state")


def _restore(client, prefix: str, saved: dict[bytes, bytes]) -> None:
    """Put an older copy of the state back: what a failover to a replica that had not yet
    received the last writes leaves, with every connection still open."""
    key = f"{{{prefix}:breaker:dep}}:state"
    client.delete(key)
    client.hset(key, mapping=saved)


def test_a_store_gone_back_to_an_older_closed_state_does_not_leave_views_open(
    pair, client, prefix, clock, caplog
) -> None:
    watcher, actor = pair(failure_threshold=2)
    succeed(watcher)
    fail(actor)
    replica = _state(client, prefix)  # CLOSED with one failure: all the replica got
    fail(actor)
    assert converged([watcher, actor], OPEN)
    _restore(client, prefix, replica)
    clock.advance(10)
    # Redis says CLOSED: the views must follow it, not ask for trials it never grants.
    with caplog.at_level(logging.WARNING, logger="resilience_kit.redis"):
        watcher.storage.resync(watcher.storage.client)
        succeed(actor)  # its own request finds it
    assert watcher._machine.state is CLOSED
    assert actor._machine.state is CLOSED
    assert "went back to an older version" in caplog.text
    succeed(watcher)
    fail(actor, 2)  # the shared state goes on from the store's version
    assert converged([watcher, actor], OPEN)


def test_a_store_gone_back_to_an_older_open_state_is_followed_at_the_next_resync(
    pair, client, prefix
) -> None:
    watcher, actor = pair(failure_threshold=2)
    succeed(watcher)
    fail(actor, 2)
    assert converged([watcher], OPEN)
    replica = _state(client, prefix)  # OPEN: the replica missed the reset below
    actor.reset()
    assert converged([watcher], CLOSED)
    _restore(client, prefix, replica)
    # The fleet's circuit is OPEN again: a view must not go on admitting every call.
    watcher.storage.resync(watcher.storage.client)
    assert watcher._machine.state is OPEN
    assert _rejected(watcher)
