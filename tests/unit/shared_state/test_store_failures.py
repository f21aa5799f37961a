"""Redis unreachable, corrupt or shared with differently configured breakers: never a crash."""

from __future__ import annotations

import logging

import fakeredis
import pytest
from shared_support import fail, succeed

from polling import until
from resilience_kit import CircuitOpenError, CircuitState, ConfigurationError, RedisStorage
from resilience_kit.testing import FakeClock

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN


def test_callers_never_see_a_store_error_and_decide_locally(process, server) -> None:
    breaker = process(failure_threshold=3)
    succeed(breaker)
    server.connected = False
    fail(breaker, 3)  # no ConnectionError reaches the caller
    assert breaker.state is OPEN  # the local state protects on its own
    stats = breaker.stats()
    assert stats.store_errors >= 1
    assert breaker.storage.guard.down


def test_a_dead_redis_costs_nothing_once_detected(process, server) -> None:
    breaker = process(failure_threshold=1000)
    succeed(breaker)
    server.connected = False
    fail(breaker)
    errors = breaker.stats().store_errors
    fail(breaker, 50)
    assert breaker.stats().store_errors <= errors + 1  # at most one probe in the interval


def test_after_recovery_the_shared_state_wins(process, server) -> None:
    local, other = process(failure_threshold=2), process(failure_threshold=2)
    succeed(local)
    server.connected = False
    fail(local, 2)
    assert local.state is OPEN
    server.connected = True
    succeed(other)  # the shared state never opened
    assert until(lambda: not local.storage.guard.down)
    succeed(local)
    assert local.state is CLOSED
    assert local.storage.guard.errors >= 1


@pytest.mark.parametrize(
    ("fallback", "state"), [("open", CircuitState.FORCED_OPEN), ("closed", CircuitState.DISABLED)]
)
def test_fallback_modes(storage_factory, process, server, fallback, state) -> None:
    breaker = process(storage=storage_factory(fallback=fallback), failure_threshold=1)
    succeed(breaker)
    server.connected = False
    fail(breaker)  # detection
    assert breaker.state is state
    if fallback == "open":
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)
    else:
        fail(breaker, 5)
        succeed(breaker)
    server.connected = True
    assert until(lambda: not breaker.storage.guard.down)
    succeed(breaker)
    assert breaker.state is CLOSED


def test_storage_events_reach_listeners(storage_factory, server) -> None:
    from resilience_kit import CircuitBreaker

    events: list[str] = []

    class Listener:
        def on_storage_degraded(self, breaker, error) -> None:
            events.append(f"degraded {type(error).__name__}")

        def on_storage_recovered(self, breaker) -> None:
            events.append("recovered")

    breaker = CircuitBreaker("dep", storage=storage_factory(), listeners=[Listener()])
    succeed(breaker)
    server.connected = False
    fail(breaker)
    server.connected = True
    assert until(lambda: events == ["degraded ConnectionError", "recovered"])
    breaker.unregister()


def _stored(**fields: str) -> dict[str, str]:
    """A state hash as this library writes it, with ``fields`` changed."""
    state = {"v": "3", "id": "abc", "s": "CLOSED", "ou": "0", "oa": "", "to": "60000000"}
    return {**state, "f": "0", "ts": "0", "ep": "2", "cfg": "x", **fields}


@pytest.mark.parametrize(
    "damage",
    [
        lambda client, key: client.set(key, "not a hash"),
        lambda client, key: client.hset(key, mapping={"v": "x", "s": "OPEN"}),
        lambda client, key: client.hset(key, mapping={"v": "1", "id": "a", "s": "MAYBE"}),
        # Numbers Lua reads but this library never writes: not finite, not integers.
        lambda client, key: client.hset(key, mapping=_stored(s="OPEN", ou="inf", oa="1")),
        lambda client, key: client.hset(key, mapping=_stored(to="nan")),
        lambda client, key: client.hset(key, mapping=_stored(v="nan")),
        lambda client, key: client.hset(key, mapping=_stored(v="1.5")),
        lambda client, key: client.hset(key, mapping=_stored(f="0x10")),
        lambda client, key: client.hset(key, mapping=_stored(ep="1e3")),
        # An incarnation id that would split the announcement's lines.
        lambda client, key: client.hset(key, mapping=_stored(id="a\nb")),
        lambda client, key: client.hset(key, mapping=_stored(id="")),
    ],
)
def test_corrupt_data_becomes_a_fresh_closed_state(process, server, prefix, caplog, damage):
    client = fakeredis.FakeRedis(server=server)
    damage(client, f"{{{prefix}:breaker:dep}}:state")
    with caplog.at_level(logging.ERROR, logger="resilience_kit.redis"):
        breaker = process(failure_threshold=2)  # its subscriber's first read may find it
        succeed(breaker)
        assert until(lambda: "was not a breaker state" in caplog.text)
    assert breaker.state is CLOSED
    fail(breaker, 2)
    assert breaker.state is OPEN
    assert client.hget(f"{{{prefix}:breaker:dep}}:state", "s") == b"OPEN"
    # Bad data is not an unreachable Redis: the storage never degraded over it.
    assert breaker.stats().store_errors == 0
    assert not breaker.storage.guard.down


def test_foreign_fields_in_the_window_are_dropped(storage_factory, process, server, prefix):
    clock = FakeClock(1000.0)  # the store's time too: bucket 333 of 3 s is the current one
    storage = storage_factory(clock=clock)
    config = {"failure_rate": 0.5, "minimum_calls": 2, "window": 60}
    client = fakeredis.FakeRedis(server=server)
    key = f"{{{prefix}:breaker:dep}}:window"
    client.hset(key, mapping={"c333": "nan", "f333": "inf", "c332": "1.5", "x333": "7"})
    breaker = process(storage=storage, clock=clock, **config)
    succeed(breaker)
    assert breaker.state is CLOSED
    fail(breaker)  # 1 failure in 2 calls: only what this library counted
    assert breaker.state is OPEN
    assert breaker.stats().store_errors == 0
    assert not storage.guard.down


def test_foreign_announcements_are_ignored(process, server, prefix) -> None:
    watcher, actor = process(failure_threshold=1), process(failure_threshold=1)
    succeed(watcher)
    assert until(lambda: watcher.storage.listening)
    client = fakeredis.FakeRedis(server=server)
    for message in ("dep\nnot a snapshot", "dep", "dep\n1\na\nOPEN\nx\n\n1\n0\n0\n2\n0"):
        client.publish(f"{prefix}:breaker:events", message)
    fail(actor)  # heard after the foreign messages, on the same subscription
    assert until(lambda: watcher._machine.state is OPEN)
    assert watcher.stats().store_errors == 0
    assert not watcher.storage.guard.down


def test_a_name_with_a_newline_is_announced_too(storage_factory, process) -> None:
    # No resync for an hour: only the announcement can tell the watcher.
    watcher = process("a\nb", storage=storage_factory(resync_interval=3600), failure_threshold=1)
    actor = process("a\nb", failure_threshold=1)
    succeed(watcher)
    assert until(lambda: watcher.storage.listening)
    fail(actor)
    assert until(lambda: watcher._machine.state is OPEN)


def test_config_drift_is_one_warning_and_changes_nothing(process, server, prefix, caplog):
    creator = process(failure_threshold=5)
    fail(creator)
    succeed(creator)  # the stored state: CLOSED, no failure pending, threshold 5
    key = f"{{{prefix}:breaker:dep}}:state"
    client = fakeredis.FakeRedis(server=server)
    stored = client.hget(key, "cfg")
    with caplog.at_level(logging.WARNING, logger="resilience_kit.redis"):
        other = process(failure_threshold=2)
        fail(other, 1)
        succeed(other)
        fail(other, 2)  # its own threshold decides for it
    assert other.state is OPEN
    assert caplog.text.count("config drift") == 1
    assert client.hget(key, "cfg") == stored


def test_same_name_with_other_settings_in_one_process_is_an_error(storage_factory) -> None:
    from resilience_kit import CircuitBreaker

    storage = storage_factory()
    first = CircuitBreaker.shared("dep", storage=storage, failure_threshold=3)
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        CircuitBreaker.shared("dep", storage=storage, failure_threshold=4)
    first.unregister()


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"fallback": "maybe"}, "fallback"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": "a{b"}, "prefix"),
        ({"trial_lease": 0}, "trial_lease"),
        ({"resync_interval": -1}, "resync_interval"),
        ({"flush_interval": -1}, "flush_interval"),
    ],
)
def test_bad_options_are_refused_by_name(server, options, parameter) -> None:
    with pytest.raises(ConfigurationError, match=parameter):
        RedisStorage(fakeredis.FakeRedis(server=server), **options)


def test_a_client_that_is_not_a_redis_client_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="client"):
        RedisStorage(object())


@pytest.mark.parametrize(
    "url",
    ["localhost:6379", "http://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0?socket_timeout=x"],
)
def test_a_url_redis_py_cannot_read_is_refused_by_name(url) -> None:
    with pytest.raises(ConfigurationError, match="client must be") as refused:
        RedisStorage(url)
    assert refused.value.parameter == "client"
    assert refused.value.value == url


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError) as refused:
        RedisStorage("http://app:s3cret@cache:6379/0")
    assert "s3cret" not in str(refused.value)
    assert "s3cret" not in str(refused.value.value)


def test_a_clock_that_is_not_a_clock_is_refused(server) -> None:
    with pytest.raises(ConfigurationError, match="clock must be a Clock"):
        RedisStorage(fakeredis.FakeRedis(server=server), clock=42)


def test_a_breaker_on_another_clock_than_its_storage_is_refused(storage_factory) -> None:
    """The shared state's times are converted to the storage's clock: a breaker deciding on
    another would compare them with its own (a rejection for the host's uptime, say)."""
    from resilience_kit import CircuitBreaker

    on_the_server = storage_factory()
    with pytest.raises(ConfigurationError, match="clock must be the clock") as refused:
        CircuitBreaker("dep", clock=FakeClock(), storage=on_the_server)
    assert refused.value.parameter == "clock"
    faked = storage_factory(clock=FakeClock())
    with pytest.raises(ConfigurationError, match="clock must be the clock"):
        CircuitBreaker("dep", storage=faked)  # the breaker on the system clock
    clock = FakeClock()
    both = CircuitBreaker("dep", clock=clock, storage=storage_factory(clock=clock))
    both.unregister()
