"""The machine of a breaker whose state lives in Redis: the local view of the shared state.

`SharedMachine` is the in-process `Machine`
with the decisions that belong to the fleet handed to Redis. While Redis answers, it only
*notes* outcomes, trial admissions and manual controls (per thread or task, in context
variables) for the cell to send; Redis decides, and its answer becomes the local state. While
Redis is unreachable (``degraded``) it is the plain machine again and decides alone.

A trial in HALF_OPEN runs only on a lease the cell obtained from Redis for this very thread or
task just before admission, so the fleet never runs more than ``half_open_max_calls`` trials at
once, whatever each process's local view says.
"""

from __future__ import annotations

import itertools
import math
from contextvars import ContextVar
from typing import Any

from resilience_kit.breaker._machine import (
    CLOSED,
    HALF_OPEN,
    LOCK,
    REJECT,
    CircuitState,
    Machine,
    MachineSettings,
    Period,
)

__all__ = ["SharedMachine", "lease", "outcome"]

# A trial lease obtained from Redis and not yet used: (machine, lease id, epoch in Redis).
lease: ContextVar[tuple[SharedMachine, str, int] | None] = ContextVar(
    "resilience_kit_redis_lease", default=None
)
# The trials this thread or task is running, innermost last: (machine, lease id, epoch in
# Redis, ticket) each. A `with breaker:` block may run another call of the breaker inside it.
trial: ContextVar[tuple[tuple[SharedMachine, str, int, Period], ...]] = ContextVar(
    "resilience_kit_redis_trial", default=()
)
# The outcome waiting to be sent: (machine, "fail" | "trial", its arguments). Successes are
# not noted here but on the machine (``pending_ok``): any thread or task, or the subscriber
# thread, may send them.
outcome: ContextVar[tuple[SharedMachine, str, tuple[Any, ...]] | None] = ContextVar(
    "resilience_kit_redis_outcome", default=None
)


class SharedMachine(Machine):
    """A `Machine` that defers to Redis unless ``degraded``.

    Attributes:
        degraded: Redis is unreachable: decide alone, as the in-process machine does.
        remote_epoch: The epoch of the state in Redis this view was last brought up to.
        pending_ok: Successes not yet sent: under the failure-rate policy every one (they are
            batched), under the consecutive policy those that end a run of failures. All were
            admitted in epoch ``pending_epoch``, and Redis counts them only if its state is
            still in that epoch (an outcome never counts in a later period); a transition
            drops them.
        pending_epoch: The epoch ``pending_ok`` belongs to.
        control: A manual control not yet sent (``"reset"``, ``"force_open"``, ...).
    """

    __slots__ = ("control", "degraded", "pending_epoch", "pending_ok", "remote_epoch")

    def __init__(
        self, settings: MachineSettings, successes: itertools.count[int] | None = None
    ) -> None:
        super().__init__(settings, successes)
        self.degraded = False
        self.remote_epoch = 0
        self.pending_ok = 0
        self.pending_epoch = 0
        self.control: str | None = None

    def admit(self, now: float) -> Period:
        """Admit as the machine does, except that a trial needs this context's Redis lease."""
        if self.degraded:
            return super().admit(now)
        self.poll(now)
        answer = self.peek(now)
        if answer is not LOCK:
            return answer
        held = lease.get()
        if held is None or held[0] is not self or held[2] != self.remote_epoch:
            return REJECT
        lease.set(None)
        ticket = self.period
        trial.set((*trial.get(), (*held, ticket)))
        self.in_flight += 1
        return ticket

    def take_pending(self, epoch: int | None = None) -> tuple[int, int]:
        """Take the successes waiting to be sent: ``(count, epoch)``; call it under the
        cell's lock. With ``epoch``, only those of that epoch (the others are stale: Redis
        would not count them)."""
        count, self.pending_ok = self.pending_ok, 0
        if epoch is not None and epoch != self.pending_epoch:
            return 0, epoch
        return count, self.pending_epoch

    def _set(self, state: CircuitState, now: float) -> None:
        # A new period: successes of the old one not yet sent count nowhere (as in Machine).
        super()._set(state, now)
        self.pending_ok = 0

    # The rate window's lock-free successes (``Period.until``) would stay in this process:
    # while Redis decides, every success goes through ``success()`` to be sent.

    def failure_count(self, now: float) -> int:
        """As the machine, without opening the lock-free way of counting successes."""
        count = super().failure_count(now)
        if not self.degraded:
            self.period.until = -math.inf
        return count

    def failure_rate(self, now: float) -> float | None:
        """As the machine, without opening the lock-free way of counting successes."""
        rate = super().failure_rate(now)
        if not self.degraded:
            self.period.until = -math.inf
        return rate

    def rebase(self, old_now: float, new_now: float) -> None:
        """As the machine, without opening the lock-free way of counting successes."""
        super().rebase(old_now, new_now)
        if not self.degraded:
            self.period.until = -math.inf

    def _is_trial(self, ticket: Period) -> bool:
        """Whether ``ticket`` was given to a trial this thread or task is running."""
        return any(held[0] is self and held[3] is ticket for held in trial.get())

    def success(self, now: float, ticket: Period) -> None:
        """Note a success for Redis (decide alone when degraded)."""
        if self.degraded:
            super().success(now, ticket)
        elif not self._is_trial(ticket):
            # A call admitted in an earlier period counts nowhere, as in the machine.
            # Under the consecutive policy only a success that ends a run of failures changes
            # the shared state.
            if (
                ticket is self.period
                and self.state is CLOSED
                and (self.settings.failure_rate is not None or self.policy.failure_count(now))
            ):
                if self.pending_epoch != self.remote_epoch:
                    self.pending_ok = 0
                    self.pending_epoch = self.remote_epoch
                self.pending_ok += 1
        else:
            self._end_trial(ticket, "ok")

    def failure(self, now: float, ticket: Period) -> None:
        """Note a failure for Redis (decide alone when degraded)."""
        if self.degraded:
            super().failure(now, ticket)
        elif not self._is_trial(ticket):
            # A call admitted in an earlier period counts nowhere, as in the machine.
            if ticket is self.period and self.state is CLOSED:
                outcome.set((self, "fail", (self.remote_epoch,)))
        else:
            self._end_trial(ticket, "fail")

    def release(self, ticket: Period) -> None:
        """A call without an outcome: give its trial lease back."""
        if self.degraded:
            super().release(ticket)
        elif self._is_trial(ticket):
            self._end_trial(ticket, "release")

    def _end_trial(self, ticket: Period, result: str) -> None:
        if ticket is self.period:
            self.in_flight -= 1
        running = trial.get()
        for index in range(len(running) - 1, -1, -1):
            held = running[index]
            if held[0] is self and held[3] is ticket:
                trial.set(running[:index] + running[index + 1 :])
                outcome.set((self, "trial", (held[1], result, held[2])))
                return

    # Manual controls act at once on the local view and are sent to Redis after.

    def force_open(self, now: float) -> None:
        """Hold open; sent to Redis as ``force_open``."""
        super().force_open(now)
        self.control = "force_open"

    def disable(self, now: float) -> None:
        """Disable; sent to Redis as ``disable``."""
        super().disable(now)
        self.control = "disable"

    def reset(self, now: float) -> None:
        """Reset; sent to Redis as ``reset``."""
        super().reset(now)
        self.control = "reset"

    def force(self, state: CircuitState, now: float) -> None:
        """Start afresh in ``state``; sent to Redis as ``force:STATE``."""
        super().force(state, now)
        self.control = f"force:{CircuitState(state).value}"

    def needs_lease(self, now: float) -> bool:
        """Whether the next admission needs a trial lease from Redis."""
        state = self.state
        return state is HALF_OPEN or (state is CircuitState.OPEN and now >= self.open_until)
