"""The cell of a breaker whose state lives in Redis: a local view kept in step with the store.

Steady state costs no Redis command: a CLOSED breaker with no failure pending decides from its
local view (for a sync client, on the breaker's lock-free fast path), and learns of every change
in Redis from the storage's subscriber thread, with a periodic resynchronisation behind it.
Redis is asked only when the shared state has to change or be consulted:

- a new cell reads the shared state before its first call is admitted;
- a recorded failure is sent before the call returns (so it is in the store by then);
- a success is sent only when it ends a run of failures (consecutive policy) or, batched,
  every ``flush_interval`` seconds (failure-rate policy, where every outcome counts);
- a trial in HALF_OPEN takes a lease in Redis first; its outcome gives it back;
- manual controls (``reset()``, ``force_open()``...) are sent after they act locally.

Every request runs one Lua script (``breaker.lua``), and its answer, the shared state with a
version, replaces the local view unless the view already holds a newer version.
"""

from __future__ import annotations

import itertools
import logging
import math
import weakref
from typing import TYPE_CHECKING, Any, cast

from resilience_kit.breaker._machine import (
    CLOSED,
    OPEN,
    CircuitState,
    Machine,
    MachineSettings,
)
from resilience_kit.breaker._redis import machine as shared
from resilience_kit.breaker._redis.machine import SharedMachine
from resilience_kit.breaker._windows import BUCKETS, ConsecutiveFailures, FailureRateWindow
from resilience_kit.breaker.storage import BreakerCell, read_count

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker
    from resilience_kit.breaker._redis.storage import RedisStorage
    from resilience_kit.clock import Clock

__all__ = ["SNAPSHOT_FIELDS", "RedisCell", "Snapshot", "parse_snapshot"]

_logger = logging.getLogger("resilience_kit.redis")
_lease_ids = itertools.count(1)
MICRO = 1_000_000
"""Microseconds in a second: the store keeps times in whole microseconds."""


SNAPSHOT_FIELDS = 10
"""Lines in a snapshot as the script writes it."""


class Snapshot:
    """The shared state as Redis returned it (times in the store's microseconds).

    Raises:
        ValueError: ``fields`` are not `SNAPSHOT_FIELDS` fields as the script writes them.
    """

    __slots__ = (
        "epoch",
        "failures",
        "incarnation",
        "now",
        "open_until",
        "opened_at",
        "state",
        "timeout",
        "trial_successes",
        "version",
    )

    def __init__(self, fields: list[str]) -> None:
        (version, self.incarnation, state, open_until, opened_at, timeout, failures, trials,
         epoch, now) = fields  # fmt: skip
        self.version = int(version)
        self.state = CircuitState(state)
        self.open_until = int(open_until)
        self.opened_at = None if opened_at == "" else int(opened_at)
        self.timeout = int(timeout)
        self.failures = int(failures)
        self.trial_successes = int(trials)
        self.epoch = int(epoch)
        self.now = int(now)


def parse_snapshot(text: str) -> Snapshot:
    """A `Snapshot` from the script's newline-separated fields."""
    return Snapshot(text.split("\n"))


def _mirror_window(policy: FailureRateWindow, now: float, calls: int, failed: int) -> None:
    """Show the fleet's window totals in the local window (for ``stats()``), all in the
    current bucket: they age out of the local view at once, and the next answer refreshes
    them."""
    policy.clear()
    policy.failure_count(now)  # turns the ring to ``now``
    slot = cast("int", policy.head) % BUCKETS  # set by the turn above
    policy.calls[slot], policy.failed[slot] = calls, failed
    policy.total, policy.total_failed = calls, failed


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisCell(BreakerCell):
    """A [`BreakerCell`][resilience_kit.breaker.storage.BreakerCell] mirrored from Redis.

    Attributes:
        storage: The [`RedisStorage`][resilience_kit.RedisStorage] it belongs to.
        name: The breaker's name.
        store_errors: Errors met talking to Redis by this storage (every breaker on it, the
            subscriber thread included), shown in ``stats()``.
        recorded_failures: Failures this process sent that Redis counted (a failure that
            arrives after the circuit opened, or from an earlier period, is not counted).
        users: Weak references to the breakers that use the cell, registered in the name
            registry or not (see `attach()`); replaced whole, never changed in place, so
            reading it needs no lock.
    """

    __slots__ = (
        "args",
        "fast_path",
        "fresh_after",
        "keys",
        "last_flush",
        "name",
        "recorded_failures",
        "requests",
        "storage",
        "synced_at",
        "users",
        "view",
        "warned",
    )

    remote = True
    machine: SharedMachine

    def __init__(self, storage: RedisStorage, name: str, settings: MachineSettings) -> None:
        # The fast path needs a view kept fresh by the subscriber thread. (A failure on an
        # async call's fast path is sent by the decorator's wrapper, which awaits it.)
        self.fast_path = storage.listener_client is not None
        super().__init__(settings)
        self.machine = SharedMachine(settings, self.successes)
        self.clean = None  # nothing is known until the first read
        self.storage = storage
        self.name = name
        self.keys = storage.keyspace.keys("breaker", name, "state", "window", "leases")
        self.args = storage.settings_args(name, settings)
        self.recorded_failures = 0
        self.requests = itertools.count(1)  # numbers the requests sent (see apply)
        self.fresh_after = 0
        self.view: tuple[str, int] | None = None  # (incarnation, version) of the local view
        self.synced_at = -math.inf
        self.last_flush = -math.inf
        self.warned = False
        self.users: tuple[weakref.ref[CircuitBreaker], ...] = ()

    # -- the breakers that use it ---------------------------------------------------------------

    def attach(self, breaker: CircuitBreaker) -> None:
        """Tell ``breaker``'s listeners of the changes made elsewhere from now on.

        Held weakly: a breaker nobody uses is not kept alive here; its reference is dropped
        by the next `attach()`.
        """
        with self.lock:
            live = tuple(ref for ref in self.users if ref() is not None)
            self.users = (*live, weakref.ref(breaker))

    def breakers(self) -> list[CircuitBreaker]:
        """The live breakers that use this cell, in the order they were made."""
        return [breaker for ref in self.users if (breaker := ref()) is not None]

    # -- what to ask Redis ----------------------------------------------------------------------

    def _pull_request(self, now: float) -> list[Any] | None:
        machine = self.machine
        if machine.degraded:
            if self.storage.guard.down:
                # One probe per interval (the guard picks the caller); its answer, if any,
                # brings the whole storage back.
                return self._acquire() if self.storage.guard.allows() else None
            self.recover()
        listening = self.storage.listening  # (asking also revives it in a forked child)
        wants_lease = machine.needs_lease(now)
        if wants_lease:
            held = shared.lease.get()
            if held is not None and held[0] is machine and held[2] == machine.remote_epoch:
                return None
        elif self.view is not None and (
            listening or now - self.synced_at < self.storage.resync_interval
        ):
            return None
        if not self.storage.guard.allows():
            return None
        return self._acquire()

    def _acquire(self) -> list[Any]:
        # Reading and taking a lease are one request: a stale view may turn out to need one
        # (OPEN past its timeout), and Redis grants it only in HALF_OPEN.
        lease_id = f"{self.storage.owner}:{next(_lease_ids)}"
        return ["acquire", lease_id, round(self.storage.trial_lease * MICRO)]

    def _push_request(self, now: float) -> list[Any] | None:
        machine = self.machine
        noted = shared.outcome.get()
        request: list[Any] | None = None
        if noted is not None and noted[0] is machine:
            shared.outcome.set(None)
            kind, details = noted[1], noted[2]
            if kind == "trial":
                request = ["trial", *details]
            else:  # a failure, with the successes noted before it (those of its epoch)
                with self.lock:
                    batched, epoch = machine.take_pending(details[0])
                request = ["record", batched, 1, epoch]
        elif machine.control is not None:
            with self.lock:
                request, machine.control = ["control", machine.control], None
        else:
            request = self._batch_request(now)
        if request is None:
            return None
        if machine.degraded or not self.storage.guard.allows():
            self._replay(request, now)
            return None
        if request[0] == "record" and request[1]:
            self.last_flush = now
        return request

    def _batch_request(self, now: float) -> list[Any] | None:
        """The noted successes, when they are due: at once when one ends a run of
        failures (consecutive policy), else every ``flush_interval`` seconds."""
        machine = self.machine
        if not machine.pending_ok or (
            machine.settings.failure_rate is not None
            and now - self.last_flush < self.storage.flush_interval
        ):
            return None
        with self.lock:
            batched, epoch = machine.take_pending()
        return ["record", batched, 0, epoch] if batched else None

    def flush_request(self, now: float) -> list[Any] | None:
        """The subscriber thread's share of `push()`: the noted successes, when due (those
        of a call whose end could not send them, such as an async call's fast path)."""
        if self.machine.degraded or not self.machine.pending_ok:
            return None
        request = self._batch_request(now)
        if request is not None:
            self.last_flush = now
        return request

    def _replay(self, request: list[Any], now: float) -> None:
        """Decide an outcome that could not be sent on the local state, as the in-process
        machine would have (Redis is unreachable: the local state must still protect)."""
        machine = self.machine
        with self.lock:
            old = machine.state
            if request[0] == "record":
                for _ in range(request[1]):
                    Machine.success(machine, now, machine.period)
                if request[2]:
                    Machine.failure(machine, now, machine.period)
            elif request[0] == "trial" and request[2] != "release":
                machine.in_flight += 1  # the trial's slot, given back when it was noted
                if request[2] == "ok":
                    Machine.success(machine, now, machine.period)
                else:
                    Machine.failure(machine, now, machine.period)
            self.clean = machine.clean if self.fast_path else None
            new = machine.state
        if new is not old:
            self.storage.announce(self, old, "an outcome decided locally (Redis unreachable)")

    # -- the hooks the breaker calls ------------------------------------------------------------

    def pull(self, now: float) -> None:
        """Bring the local view up to date if it may be stale, and take a trial lease when
        the next admission needs one (sync clients; an async client's view waits for
        `pull_async()`)."""
        if self.storage.is_async:
            return
        request = self._pull_request(now)
        if request is not None:
            self._run(request, now)

    def push(self, now: float) -> None:
        """Send the outcome, control or batch this thread has noted (sync clients)."""
        if self.storage.is_async:
            return
        request = self._push_request(now)
        if request is not None:
            self._run(request, now)

    async def pull_async(self, now: float) -> None:
        """`pull()` through an asyncio client."""
        if not self.storage.is_async:
            self.pull(now)
            return
        request = self._pull_request(now)
        if request is not None:
            await self._run_async(request, now)

    async def push_async(self, now: float) -> None:
        """`push()` through an asyncio client."""
        if not self.storage.is_async:
            self.push(now)
            return
        request = self._push_request(now)
        if request is not None:
            await self._run_async(request, now)

    def _run(self, request: list[Any], now: float) -> None:
        sent = next(self.requests)
        try:
            args = self.script_args(request)
            reply = self.storage.script(self.storage.client, self.keys, args)
        except Exception as error:
            self.failed(error, request, now)
            return
        self.answered(request, reply, now, sent)

    async def _run_async(self, request: list[Any], now: float) -> None:
        sent = next(self.requests)
        try:
            reply = await self.storage.script.call_async(
                self.storage.client, self.keys, [*self.script_args(request)]
            )
        except Exception as error:
            self.failed(error, request, now)
            return
        self.answered(request, reply, now, sent)

    def script_args(self, request: list[Any]) -> list[Any]:
        """The script's ARGV for ``request`` (an operation and its own arguments)."""
        args = self.args
        storage = self.storage
        clock = storage.fixed_clock
        now = "" if clock is None else storage.fixed_time(clock.monotonic())
        return [request[0], now, *args, *request[1:]]

    @property
    def clock(self) -> Clock:  # type: ignore[override]
        """The storage's clock: the shared times are converted to it (see `apply()`)."""
        return self.storage.clock

    @property
    def store_errors(self) -> int:  # type: ignore[override]
        """Errors met talking to Redis through this cell's storage."""
        return self.storage.guard.errors

    def failed(self, error: BaseException, request: list[Any], now: float) -> None:
        """``request`` met ``error``: tell the guard, decide what it carried locally."""
        self.storage.guard.failed(error)
        self._replay(request, now)

    def answered(self, request: list[Any], reply: Any, now: float, sent: int) -> None:
        """Take Redis's ``reply`` to ``request`` (number ``sent``) into the local view."""
        self.storage.guard.succeeded()
        try:
            snapshot = parse_snapshot(_text(reply[0]))
            drift, corrupt, granted = (_text(reply[index]) == "1" for index in (1, 2, 3))
            counted = int(_text(reply[4]))
            window = (int(_text(reply[5])), int(_text(reply[6])))
        except Exception as error:  # not our script's answer: count it, keep the local view
            self.failed(error, request, now)
            return
        self.recorded_failures += counted
        if corrupt:
            _logger.error(
                "breaker %r: the data under %s was not a breaker state this library wrote; "
                "it was replaced by a fresh CLOSED state",
                self.name,
                self.keys[0],
            )
        if drift and not self.warned:
            self.warned = True
            _logger.warning(
                "breaker %r: its settings differ from those stored in Redis by the process "
                "that created the shared state (config drift); this process decides with its "
                "own settings and leaves the stored ones as they are",
                self.name,
            )
        if granted:
            shared.lease.set((self.machine, request[1], snapshot.epoch))
        self.apply(snapshot, now, window=window, sent=sent)

    # -- the local view -------------------------------------------------------------------------

    def apply(
        self,
        snapshot: Snapshot,
        now: float,
        *,
        window: tuple[int, int] | None = None,
        sent: int | None = None,
    ) -> None:
        """Make ``snapshot`` the local view, unless the view holds a newer version.

        Versions order the states of one incarnation (the state from its creation in Redis
        to its expiry or loss). A snapshot of another incarnation replaces the view, unless
        it answers a request (number ``sent``) sent before the view was last refreshed: such
        a late answer may describe a state that is gone (an empty key read just before the
        state was created).

        An answer to a request sent after the view was refreshed tells what Redis holds now,
        later than the view: if that is an older version of the same incarnation (or the
        same version in another epoch), Redis lost writes (a failover to a replica that had
        not received them, a restart from an older dump) and the answer replaces the view.
        Ignoring it would leave the view in a state the store no longer has (OPEN, asking
        for trials Redis never grants in CLOSED; or CLOSED, admitting every call while the
        store is OPEN) until the store's version caught up. A late announcement (no
        ``sent``) cannot tell: the next resync, a numbered read, does.
        """
        machine = self.machine
        with self.lock:
            view = self.view
            if (
                view is not None
                and view[0] != snapshot.incarnation
                and sent is not None
                and sent < self.fresh_after
            ):
                return
            went_back = (
                view is not None
                and view[0] == snapshot.incarnation
                and sent is not None
                and sent >= self.fresh_after
                and (
                    snapshot.version < view[1]
                    or (snapshot.version == view[1] and snapshot.epoch != machine.remote_epoch)
                )
            )
            if (
                view is not None
                and not went_back
                and view[0] == snapshot.incarnation
                and snapshot.version <= view[1]  # a late answer: the view is as new or newer
            ):
                self.synced_at = now
                policy = machine.policy
                if (
                    window is not None
                    and snapshot.version == view[1]
                    and isinstance(policy, FailureRateWindow)
                ):
                    _mirror_window(policy, now, *window)
                return
            if machine.degraded:
                return
            if went_back:
                _logger.warning(
                    "breaker %r: the shared state in Redis went back to an older version "
                    "(%d, the view had %d): writes were lost (a failover or a restart from an "
                    "older dump); this process follows the stored state",
                    self.name,
                    snapshot.version,
                    cast("tuple[str, int]", view)[1],
                )
            old = machine.state

            def local(micros: int) -> float:
                return now + (micros - snapshot.now) / MICRO

            machine.open_until = local(snapshot.open_until)
            machine.opened_at = None if snapshot.opened_at is None else local(snapshot.opened_at)
            machine.timeout = snapshot.timeout / MICRO
            if snapshot.state is not old or snapshot.epoch != machine.remote_epoch:
                machine._set(snapshot.state, now)
            state = snapshot.state
            machine.reject_until = (
                machine.open_until
                if state is OPEN
                else math.inf
                if state is CircuitState.FORCED_OPEN
                else -math.inf
            )
            machine.trial_successes = snapshot.trial_successes
            policy = machine.policy
            if isinstance(policy, ConsecutiveFailures):
                policy.failures = snapshot.failures
            elif window is not None:
                _mirror_window(policy, now, *window)
            if state is not CLOSED:
                # The figures the shared state holds since it left CLOSED (see Machine.held).
                machine.held = (policy.failure_count(now), policy.failure_rate(now))
            machine.remote_epoch = snapshot.epoch
            self.view = (snapshot.incarnation, snapshot.version)
            self.fresh_after = read_count(self.requests)
            self.synced_at = now
            self.clean = machine.clean if self.fast_path else None
            new = machine.state
        if new is not old:
            self.storage.announce(self, old, "shared state changed in Redis")

    def degrade(self, now: float) -> None:
        """Redis became unreachable: decide alone, in the storage's ``fallback`` mode."""
        machine = self.machine
        with self.lock:
            machine.degraded = True
            old = machine.state
            mode = self.storage.fallback
            if mode == "open":
                Machine.force_open(machine, now)
            elif mode == "closed":
                Machine.disable(machine, now)
            self.clean = machine.clean if self.fast_path else None
            new = machine.state
        if new is not old:
            self.storage.announce(self, old, f"Redis unreachable (fallback={mode!r})")

    def forget_view(self) -> None:
        """Read the shared state again before the next call is decided (the clock the
        view's times were on is gone)."""
        with self.lock:
            if not self.machine.degraded:
                self._recover_view()

    def recover(self) -> None:
        """Redis answers again: forget the view so the next request reads the shared state."""
        with self.lock:
            self._recover_view()

    def _recover_view(self) -> None:
        machine = self.machine
        machine.degraded = False
        machine.reject_until = -math.inf  # the next call goes to the slow path and reads
        machine.period.until = -math.inf  # successes go to Redis again, none lock-free
        self.view = None
        self.clean = None
