"""The circuit breaker's state machine: pure, no I/O, no locks, no asyncio.

The machine turns events (may a call run now? it succeeded, it failed, it ended without an
outcome) into decisions and state changes. It is not thread-safe on its own: the breaker
serialises every call with a lock, except the lock-free parts (reading the state to admit a call
in CLOSED, rejecting in OPEN before the deadline), which use only ``clean``, ``peek`` and
``retry_after``: those read and never write.

Time is always passed in (``now``, monotonic seconds), so the machine can be driven by a fake
clock or replayed from a log without any patching.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from resilience_kit.breaker._windows import ConsecutiveFailures, FailureRateWindow

__all__ = [
    "LOCK",
    "NORMAL",
    "REJECT",
    "CircuitState",
    "Machine",
    "MachineSettings",
]


class CircuitState(str, enum.Enum):
    """The states of a circuit breaker; ``str()`` gives the upper-case name used in JSON.

    Attributes:
        CLOSED: Calls run; failures are counted against the failure policy.
        OPEN: Calls are rejected until the recovery timeout has passed.
        HALF_OPEN: A limited number of trial calls run; their outcome closes or re-opens it.
        FORCED_OPEN: Held open by hand (``force_open()``); every call is rejected.
        DISABLED: Switched off by hand (``disable()``); every call runs, nothing opens it.
    """

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    FORCED_OPEN = "FORCED_OPEN"
    DISABLED = "DISABLED"

    def __str__(self) -> str:
        return self.value


CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN
FORCED_OPEN = CircuitState.FORCED_OPEN
DISABLED = CircuitState.DISABLED

# Admission tickets. A call admitted outside HALF_OPEN holds NORMAL; a trial holds the epoch it
# was admitted in (always >= 1), so an outcome that arrives after the state has moved on (a
# reset, a re-open) cannot touch the new period's trial slots or successes.
NORMAL = 0
REJECT = -1
LOCK = -2
"""Returned by `Machine.peek()` when the answer needs a state change: call ``admit``."""


@dataclass(frozen=True, slots=True)
class MachineSettings:
    """The part of a breaker's configuration that decides its state (validated by the breaker).

    Two breakers that share one state (``CircuitBreaker.shared``) must agree on these.
    """

    failure_threshold: int = 5
    failure_rate: float | None = None
    window: float = 60.0
    minimum_calls: int = 10
    recovery_timeout: float = 60.0
    max_recovery_timeout: float | None = None
    half_open_max_calls: int = 1
    success_threshold: int = 1


class Machine:
    """One breaker's state and the rules that move it.

    Attributes:
        state: The current [`CircuitState`][resilience_kit.CircuitState].
        open_until: Monotonic time at which OPEN admits trials.
        reject_until: Every call before this monotonic time is rejected: ``open_until`` in
            OPEN, infinity in FORCED_OPEN, minus infinity otherwise. It is the one field a
            caller needs to turn a call away without a lock.
        opened_at: Monotonic time the breaker last opened (``None`` if never since reset).
        timeout: The recovery timeout the next opening will use.
        epoch: Bumped on every state change; trial tickets carry it.
        in_flight: Trial calls admitted in this HALF_OPEN period and not yet finished.
        trial_successes: Successful trials in this HALF_OPEN period.
    """

    __slots__ = (
        "epoch",
        "in_flight",
        "open_until",
        "opened_at",
        "policy",
        "reject_until",
        "settings",
        "state",
        "timeout",
        "trial_successes",
    )

    def __init__(self, settings: MachineSettings) -> None:
        self.settings = settings
        self.policy: ConsecutiveFailures | FailureRateWindow = (
            ConsecutiveFailures(settings.failure_threshold)
            if settings.failure_rate is None
            else FailureRateWindow(settings.failure_rate, settings.window, settings.minimum_calls)
        )
        self.state = CLOSED
        self.open_until = 0.0
        self.reject_until = -math.inf
        self.opened_at: float | None = None
        self.timeout = settings.recovery_timeout
        self.epoch = 1
        self.in_flight = 0
        self.trial_successes = 0

    # -- queries ------------------------------------------------------------------------------
    # clean, peek and retry_after only read: safe without the breaker's lock. failure_count
    # turns the rate window to ``now``, which writes: hold the lock.

    @property
    def clean(self) -> bool:
        """True when a success needs no bookkeeping beyond the totals.

        That is CLOSED with the consecutive policy and no failure pending (a success would only
        reset a count that is already zero), or DISABLED (nothing is counted).
        """
        state = self.state
        if state is DISABLED:
            return True
        policy = self.policy
        return state is CLOSED and type(policy) is ConsecutiveFailures and policy.failures == 0

    def peek(self, now: float) -> int:
        """Answer an admission without changing anything, or return `LOCK`.

        Returns:
            `NORMAL` (run it), `REJECT`, or `LOCK` when admitting needs a
            state change or a trial slot: then call `admit()` under the lock.
        """
        if now < self.reject_until:
            return REJECT
        state = self.state
        if state is CLOSED or state is DISABLED:
            return NORMAL
        return LOCK

    def retry_after(self, now: float) -> float:
        """Seconds until a trial call is admitted (0 when one would be now or never by time)."""
        left = self.reject_until - now
        return left if 0.0 < left < math.inf else 0.0

    def failure_count(self, now: float) -> int:
        """Failures the policy holds now: consecutive ones, or those in the rate window.

        Not read-only: the rate window drops the buckets older than ``now``. Hold the lock.
        """
        return self.policy.failure_count(now)

    # -- events ---------------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        """Let time act: OPEN becomes HALF_OPEN once its recovery timeout has passed."""
        if self.state is OPEN and now >= self.open_until:
            self._set(HALF_OPEN)

    def admit(self, now: float) -> int:
        """Decide whether a call may run now, taking a trial slot in HALF_OPEN.

        Returns:
            `NORMAL`, `REJECT`, or a trial ticket (the current epoch, >= 1) that
            must come back through `success()`, `failure()` or `release()`.
        """
        self.poll(now)
        answer = self.peek(now)
        if answer != LOCK:
            return answer
        if self.in_flight >= self.settings.half_open_max_calls:
            return REJECT
        self.in_flight += 1
        return self.epoch

    def success(self, now: float, ticket: int) -> None:
        """Record a successful call admitted with ``ticket``."""
        if ticket == NORMAL:
            if self.state is CLOSED:
                policy = self.policy
                policy.record(now, failed=False)
                if policy.tripped():
                    self._open(now)
        elif ticket == self.epoch:
            self.in_flight -= 1
            self.trial_successes += 1
            if self.trial_successes >= self.settings.success_threshold:
                self.timeout = self.settings.recovery_timeout
                self._close()

    def failure(self, now: float, ticket: int) -> None:
        """Record a failed call admitted with ``ticket``."""
        if ticket == NORMAL:
            if self.state is CLOSED:
                policy = self.policy
                policy.record(now, failed=True)
                if policy.tripped():
                    self._open(now)
        elif ticket == self.epoch:
            self.in_flight -= 1
            ceiling = self.settings.max_recovery_timeout
            if ceiling is not None:
                self.timeout = min(self.timeout * 2, ceiling)
            self._open(now)

    def release(self, ticket: int) -> None:
        """A call ended without an outcome that counts: give back its trial slot, if any."""
        if ticket > 0 and ticket == self.epoch:
            self.in_flight -= 1

    def force_open(self, now: float) -> None:
        """Hold the breaker open until `reset()`."""
        self.opened_at = now
        self._set(FORCED_OPEN)

    def disable(self) -> None:
        """Let every call through and count nothing until `reset()`."""
        self._set(DISABLED)

    def reset(self) -> None:
        """Back to a fresh CLOSED state with the base recovery timeout."""
        self.timeout = self.settings.recovery_timeout
        self.opened_at = None
        self._close()

    def force(self, state: CircuitState, now: float) -> None:
        """Start afresh in ``state``, as if the breaker had got there itself (for tests).

        OPEN has just opened with the base recovery timeout; HALF_OPEN has just let that
        timeout pass, so the next call is a trial.
        """
        self.reset()
        if state is OPEN:
            self._open(now)
        elif state is HALF_OPEN:
            self.opened_at = self.open_until = now
            self._set(HALF_OPEN)
        elif state is FORCED_OPEN:
            self.force_open(now)
        elif state is DISABLED:
            self.disable()

    def rebase(self, old_now: float, new_now: float) -> None:
        """Move every stored time onto another clock that reads ``new_now`` when this one
        reads ``old_now``: what is left of a timeout, and the ages of outcomes, stay as they are.
        """
        shift = new_now - old_now
        self.open_until += shift
        if self.opened_at is not None:
            self.opened_at += shift
        if self.state is OPEN:
            self.reject_until = self.open_until
        self.policy.rebase(old_now, new_now)

    # -- transitions ----------------------------------------------------------------------------

    def _set(self, state: CircuitState) -> None:
        self.state = state
        self.reject_until = (
            self.open_until if state is OPEN else math.inf if state is FORCED_OPEN else -math.inf
        )
        self.epoch += 1
        self.in_flight = 0
        self.trial_successes = 0

    def _open(self, now: float) -> None:
        self.opened_at = now
        self.open_until = now + self.timeout
        self._set(OPEN)

    def _close(self) -> None:
        # A fresh CLOSED period judges only what happens from now on.
        self.policy.clear()
        self._set(CLOSED)
