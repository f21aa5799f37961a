"""`RedisStorage`: one object per Redis for every primitive that shares state across processes.

The parts other primitives reuse are separate: key naming (`keys`), script loading
(`scripts`), the health guard (`guard`) and the subscriber thread below, which
delivers change announcements and resynchronises what it watches. Breakers get their cells from
[`RedisStorage.cell()`][resilience_kit.RedisStorage.cell].
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal

from resilience_kit import _validation as check
from resilience_kit._redact import redact_url
from resilience_kit.breaker._listeners import MANUAL, notify
from resilience_kit.breaker._machine import CircuitState, MachineSettings
from resilience_kit.breaker._redis.cell import MICRO, SNAPSHOT_FIELDS, RedisCell, Snapshot
from resilience_kit.breaker._redis.clients import (
    is_async_client,
    listener_client,
    make_client,
)
from resilience_kit.breaker._redis.guard import HealthGuard
from resilience_kit.breaker._redis.keys import KeySpace
from resilience_kit.breaker._redis.scripts import load_script
from resilience_kit.breaker.storage import _mismatch
from resilience_kit.clock import SYSTEM_CLOCK, Clock, default_clock
from resilience_kit.errors import ConfigurationError

__all__ = ["RedisStorage"]

_logger = logging.getLogger("resilience_kit.redis")
_BREAKER_SCRIPT = load_script("breaker.lua")
_FALLBACKS = ("local", "closed", "open")
_TTL = 7 * 24 * 3600  # seconds an untouched breaker's keys live
_RECONNECT = 0.25  # seconds between the subscriber's attempts while Redis is down
_PIPELINE = 1000  # scripts sent in one pipeline by the subscriber thread at most
_IDLE = 1.0  # seconds the subscriber waits for an announcement at most
_SOONEST = 0.05  # seconds: the shortest wait between the subscriber's flushes


_storages: weakref.WeakSet[RedisStorage] = weakref.WeakSet()


def live_storages() -> list[RedisStorage]:
    """Every `RedisStorage` of this process still in use (for the pytest plugin's clock)."""
    return list(_storages)


def _after_fork() -> None:
    """In a forked child: every view may be stale and the subscriber thread is gone, so each
    breaker's next call takes the slow path, reads the shared state and starts a subscriber.
    No lock is taken: a thread of the parent may have held one at the fork."""
    for storage in list(_storages):
        for cell in list(storage._cells.values()):
            cell.view = None
            cell.clean = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class RedisStorage:
    """Breaker state shared through Redis by every process that uses the same names.

    Pass it as `CircuitBreaker(..., storage=RedisStorage(client))`. Breakers with the same name
    on the same Redis and prefix, in any process on any machine, share one circuit: the same
    state, one failure count or failure-rate window, one fleet-wide budget of
    `half_open_max_calls` trial calls. See the [shared state guide](../shared-state.md) for
    what each process sees and when.

    Args:
        client: A redis-py client: `redis.Redis`, `redis.asyncio.Redis`, a Sentinel master
            (`Sentinel(...).master_for(...)`, sync or asyncio),
            `redis.cluster.RedisCluster` or `redis.asyncio.cluster.RedisCluster`; it is used
            as it is. (The background thread that hears announcements and resynchronises
            talks through a sync client: this one, or for an asyncio client one built from
            its settings.) Or a `redis://` URL: then the storage builds a sync client with
            0.25 s timeouts and no command retries.
        prefix: The first part of every key (`{PREFIX:breaker:NAME}:...`) and channel.
        fallback: What breakers do while Redis is unreachable: `"local"` (go on deciding on
            this process's own state), `"closed"` (let every call through; the breaker
            reports DISABLED) or `"open"` (reject every call; it reports FORCED_OPEN).
        trial_lease: Seconds a trial call's HALF_OPEN slot is held in Redis at most: a trial
            whose process dies gives its slot back after this long.
        resync_interval: Seconds between full re-reads of the shared state, behind the
            change announcements (pipelined: one round trip for every breaker of the
            storage, one per node on a Cluster).
        flush_interval: Seconds a success may wait before it is counted in Redis, under the
            failure-rate policy (successes are batched; failures are sent at once).
        clock: Time for the shared state. By default the Redis server's clock (`TIME`), so
            the machines' clocks never matter; a clock given here (or installed with
            [use_clock][resilience_kit.testing.use_clock] when the storage is made) replaces
            it, for tests. The pytest plugin's `fake_clock` also reaches a storage made
            before the test (at import time) for the test's duration.

    Raises:
        ConfigurationError: A parameter is outside its range.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "rk",
        fallback: Literal["local", "closed", "open"] = "local",
        trial_lease: float = 30.0,
        resync_interval: float = 1.0,
        flush_interval: float = 0.1,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(client, str):
            client = _client_from_url(client)
        elif not callable(getattr(client, "evalsha", None)):
            raise ConfigurationError(
                f"client must be a redis-py client or a redis:// URL, got {client!r}",
                parameter="client",
                value=client,
            )
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                f"prefix must be a non-empty str without braces, got {prefix!r}",
                parameter="prefix",
                value=prefix,
            )
        if fallback not in _FALLBACKS:
            raise check._fail("fallback", fallback, "one of " + ", ".join(map(repr, _FALLBACKS)))
        check.check_clock("clock", clock)
        self.client = client
        self.prefix = prefix
        self.fallback = fallback
        self.trial_lease = check.check_number(
            "trial_lease", trial_lease, minimum=0, min_inclusive=False
        )
        self.resync_interval = check.check_number(
            "resync_interval", resync_interval, minimum=0, min_inclusive=False
        )
        self.flush_interval = check.check_number("flush_interval", flush_interval, minimum=0)
        if clock is None and default_clock() is not SYSTEM_CLOCK:
            clock = default_clock()
        self.fixed_clock = clock
        self.clock: Clock = SYSTEM_CLOCK if clock is None else clock
        # Seconds added to fixed_clock's readings for the store (see _use_clock).
        self.clock_offset = 0.0
        self.is_async = is_async_client(client)
        # What makes the subscriber thread's sync client (None: breakers poll instead).
        self.listener_client = listener_client(client)
        self.keyspace = KeySpace(prefix)
        self.channel = self.keyspace.channel("breaker")
        self.script = _BREAKER_SCRIPT
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self.guard = HealthGuard()
        self.guard.on_down.append(self._down)
        self.guard.on_up.append(self._up)
        self._cells: weakref.WeakValueDictionary[str, RedisCell] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()
        self._listener: _Listener | None = None
        _storages.add(self)

    # -- breakers -------------------------------------------------------------------------------

    def cell(self, name: str, settings: MachineSettings) -> RedisCell:
        """The cell for breaker ``name`` in this process (see
        [BreakerStorage][resilience_kit.BreakerStorage]).

        Raises:
            ConfigurationError: A live breaker of this process uses ``name`` here with
                different settings. (Another *process* with different settings is config
                drift: logged once, never an error.)
        """
        with self._lock:
            cell = self._cells.get(name)
            if cell is None:
                cell = self._cells[name] = RedisCell(self, name, settings)
            elif cell.machine.settings != settings:
                raise _mismatch(name, settings, cell.machine.settings)
            if self._listener is None:
                self._listener = _Listener.start(self)
        if self.guard.down:
            cell.degrade(self.clock.monotonic())
        return cell

    def settings_args(self, name: str, settings: MachineSettings) -> list[Any]:
        """The script arguments that describe breaker ``name``'s settings (ARGV 3 to 15)."""

        def micros(seconds: float | None) -> str:
            return "" if seconds is None else str(round(seconds * 1_000_000))

        rate = "" if settings.failure_rate is None else repr(settings.failure_rate)
        values = [
            str(settings.failure_threshold),
            rate,
            micros(settings.window),
            str(settings.minimum_calls),
            micros(settings.recovery_timeout),
            micros(settings.max_recovery_timeout),
            str(settings.half_open_max_calls),
            str(settings.success_threshold),
        ]
        return ["|".join(values), *values, _TTL, self.channel, name, os.urandom(6).hex()]

    @property
    def listening(self) -> bool:
        """Whether change announcements are arriving (the subscriber is connected).

        In a process forked after the storage was made (a pre-forking server), the subscriber
        thread did not survive the fork: the first caller that asks starts a new one.
        """
        listener = self._listener
        if listener is not None and listener.pid != os.getpid():
            with self._lock:
                if self._listener is listener:
                    self._listener = _Listener.start(self)
            return False
        return listener is not None and listener.connected

    def live_cells(self) -> list[RedisCell]:
        """The cells of this process's live breakers."""
        with self._lock:
            return list(self._cells.values())

    def announce(self, cell: RedisCell, old: CircuitState, cause: str) -> None:
        """Tell the listeners of ``cell``'s breakers about a change the view went through."""
        for breaker in cell.breakers():
            with cell.lock:
                breaker._settle(old, MANUAL, cause)
            if cell.outbox:
                breaker._deliver()

    def fixed_time(self, now: float) -> int:
        """The store's time, in microseconds, at ``now`` on the fixed clock (what the
        scripts are given instead of the server's ``TIME`` while a fixed clock is in use)."""
        return round((now + self.clock_offset) * MICRO)

    def _use_clock(self, clock: Clock | None) -> Clock | None:
        """Time the shared state by ``clock`` from now on (``None``: the Redis server's
        clock); return the clock used so far (``None`` for the server's).

        Private but stable: the pytest plugin's ``fake_clock`` uses it (through
        ``use_clock_everywhere``) for storages made before the test, at import time. The
        store's timeline goes on where it is: ``clock`` is offset to read the wall clock now
        (which the server's ``TIME`` is, on this machine), so what is left of a timeout in
        Redis carries over and advancing ``clock`` advances it. Every local view is read
        again before it is used.
        """
        previous = self.fixed_clock
        if clock is None or clock is SYSTEM_CLOCK:
            self.fixed_clock, self.clock, self.clock_offset = None, SYSTEM_CLOCK, 0.0
        else:
            self.clock_offset = time.time() - clock.monotonic()
            self.fixed_clock = self.clock = clock
        for cell in self.live_cells():
            cell.forget_view()
        return previous

    def _down(self, error: BaseException) -> None:
        _logger.warning(
            "Redis unreachable (%s: %s); breakers decide on local state (fallback=%r)",
            type(error).__name__,
            error,
            self.fallback,
        )
        now = self.clock.monotonic()
        for cell in self.live_cells():
            cell.degrade(now)
            for breaker in cell.breakers():
                notify(breaker._on_store[0], "on_storage_degraded", breaker, error)

    def _up(self) -> None:
        _logger.warning("Redis answers again; breakers resynchronise with the shared state")
        for cell in self.live_cells():
            cell.recover()
            for breaker in cell.breakers():
                notify(breaker._on_store[1], "on_storage_recovered", breaker)
        listener = self._listener
        if listener is not None:
            listener.wake()

    # -- the subscriber's work ------------------------------------------------------------------

    def receive(self, message: str) -> None:
        """Apply one change announcement (``name`` and a snapshot, newline-separated).

        The snapshot is the last `SNAPSHOT_FIELDS` lines (a name may hold newlines). A
        message that is not one (someone else publishing on the channel) is ignored: it says
        nothing about Redis's health, and the periodic resync reads the state anyway.
        """
        lines = message.split("\n")
        name = "\n".join(lines[:-SNAPSHOT_FIELDS])
        with self._lock:
            cell = self._cells.get(name)
        if cell is None:
            return
        try:
            snapshot = Snapshot(lines[-SNAPSHOT_FIELDS:])
        except (TypeError, ValueError):
            _logger.debug("ignored a message on %s: %r", self.channel, message[:200])
            return
        now = self.clock.monotonic()
        if self.fixed_clock is not None:
            # The store's time is known exactly on a fixed clock: a message sent before the
            # clock was switched (or delayed while a test advanced it) is not read as "sent
            # just now", which would restart the timeout it carries at the receiving moment.
            snapshot.now = self.fixed_time(now)
        cell.apply(snapshot, now)

    def resync(self, client: Any) -> None:
        """Re-read every live breaker's shared state through the sync ``client`` (the
        subscriber thread's periodic task): pipelined, so a thousand breakers cost one round
        trip (one per node on a Cluster)."""
        if self.guard.down and not self.guard.allows():
            return
        self._send(client, [(cell, ["read"]) for cell in self.live_cells()])

    def flush(self, client: Any) -> bool:
        """Send every live breaker's successes that are due (pipelined, as `resync()`): a
        success whose call could not send it (an async call's fast path) or a batch under the
        failure-rate policy that no later call came to send. Whether some are still waiting
        (not due yet, or noted meanwhile)."""
        if self.guard.down:
            return False  # the next caller that gets through sends or replays them
        now = self.clock.monotonic()
        batch = []
        cells = self.live_cells()
        for cell in cells:
            request = cell.flush_request(now)
            if request is not None:
                batch.append((cell, request))
        self._send(client, batch)
        return any(cell.machine.pending_ok for cell in cells)

    def _send(self, client: Any, batch: list[tuple[RedisCell, list[Any]]]) -> None:
        for start in range(0, len(batch), _PIPELINE):
            chunk = batch[start : start + _PIPELINE]
            now = self.clock.monotonic()
            sent = [next(cell.requests) for cell, _ in chunk]
            calls = [(cell.keys, cell.script_args(request)) for cell, request in chunk]
            try:
                replies = self.script.run_many(client, calls)
            except Exception as error:
                for cell, request in chunk:
                    cell.failed(error, request, now)
                return
            for (cell, request), number, reply in zip(chunk, sent, replies, strict=True):
                if isinstance(reply, Exception):
                    cell.failed(reply, request, now)
                else:
                    cell.answered(request, reply, now, number)

    def close(self) -> None:
        """Stop the subscriber thread (breakers go on, resynchronising by polling)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def __repr__(self) -> str:
        return f"RedisStorage(prefix={self.prefix!r}, fallback={self.fallback!r})"


def _client_from_url(url: str) -> Any:
    """`make_client()`, its refusal of a URL as a `ConfigurationError` (password masked)."""
    try:
        return make_client(url)
    except ValueError as error:
        shown = redact_url(url)
        raise ConfigurationError(
            f"client must be a redis-py client or a redis://, rediss:// or unix:// URL, "
            f"got {shown!r} ({redact_url(str(error))})",
            parameter="client",
            value=shown,
        ) from None


class _Listener:
    """The subscriber thread: change announcements as they happen, a full resync periodically.

    It holds its storage weakly and ends when the storage is garbage-collected or closed.
    """

    def __init__(self, storage: RedisStorage, make: Callable[[], Any]) -> None:
        self._storage = weakref.ref(storage)
        self._make = make
        self._client: Any = None
        self._users = storage.client  # never closed here; a twin made for the thread is
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.connected = False
        self.rounds = 0  # turns of work done (resync, flush): lets a benchmark see it settle
        self.pid = os.getpid()
        self._thread = threading.Thread(
            target=self._run, name=f"resilience_kit-redis-{storage.prefix}", daemon=True
        )

    @classmethod
    def start(cls, storage: RedisStorage) -> _Listener | None:
        if storage.listener_client is None:
            return None
        listener = cls(storage, storage.listener_client)
        listener._thread.start()
        return listener

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread: no announcement is applied once this returns (one being applied
        is waited for; the thread itself ends when it next wakes)."""
        self._stop.set()
        if self._thread is not threading.current_thread() and self._thread.is_alive():
            self._thread.join(timeout=_SOONEST)

    def _run(self) -> None:
        pubsub = None
        next_resync = 0.0
        while not self._stop.is_set():
            storage = self._storage()
            if storage is None:
                break
            try:
                if pubsub is None:
                    pubsub = self._subscribe(storage)
                    next_resync = 0.0
                next_resync = self._round(storage, pubsub, next_resync)
            except Exception as error:
                self.connected = False
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
                pubsub = None
                storage.guard.failed(error)
            del storage
        self.connected = False
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                _logger.debug("closing the subscription failed", exc_info=True)
        if self._client is not None and self._client is not self._users:
            try:
                self._client.close()
            except Exception:
                _logger.debug("closing the subscriber's client failed", exc_info=True)

    def _subscribe(self, storage: RedisStorage) -> Any:
        if storage.guard.down and not self._wake.is_set():
            self._wake.wait(_RECONNECT)
        self._wake.clear()
        if self._client is None:
            self._client = self._make()
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(storage.channel)
        self.connected = True
        storage.guard.succeeded()
        return pubsub

    def _round(self, storage: RedisStorage, pubsub: Any, next_resync: float) -> float:
        """One turn: resync if due, send due successes, then wait for announcements; the
        time of the next resync."""
        now = time.monotonic()
        if now >= next_resync:
            next_resync = now + storage.resync_interval
            storage.resync(self._client)
        waiting = storage.flush(self._client)
        # Idle, the thread wakes only for the next resync (or at least every _IDLE seconds);
        # an announcement wakes it at once.
        wait = min(next_resync - time.monotonic(), _IDLE)
        if waiting:
            wait = min(wait, max(storage.flush_interval, _SOONEST))
        self.rounds += 1
        message = pubsub.get_message(timeout=max(wait, 0.0))
        while message is not None and not self._stop.is_set():
            if message.get("type") == "message":
                data = message["data"]
                storage.receive(data.decode() if isinstance(data, bytes) else data)
            message = pubsub.get_message(timeout=0)
        return next_resync
