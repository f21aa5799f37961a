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
import itertools
import math
from dataclasses import dataclass

from resilience_kit.breaker._windows import ConsecutiveFailures, FailureRateWindow

__all__ = [
    "LOCK",
    "REJECT",
    "CircuitState",
    "Machine",
    "MachineSettings",
    "Period",
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


class Period:
    """One stretch of one state; every admission is tagged with the period it was made in.

    Every transition starts a new period, so an outcome that arrives after the state has moved
    on (a reset, an opening, a recovery) is recognised as stale (``ticket is not
    machine.period``) and counts nowhere: not in the new period's failures, rate window or
    trial slots.

    Attributes:
        until: Before this monotonic time, a success of a call admitted in this period may be
            counted without the breaker's lock, by stepping the lifetime success counter
            (rate policy: CLOSED, while no success could open it, until its newest bucket
            ends; DISABLED: always). Minus infinity otherwise, and forever once the period is
            over. The check and the step are atomic under the GIL on CPython 3.11+ (no
            thread switch between them), so no step lands after its period has ended.
    """

    __slots__ = ("until",)

    def __init__(self, until: float = -math.inf) -> None:
        self.until = until

    def __repr__(self) -> str:
        return f"Period(until={self.until!r})"


REJECT = Period()
"""Returned by `Machine.peek` and `admit` for a call that may not run."""
LOCK = Period()
"""Returned by `Machine.peek` when the answer needs a state change: call ``admit``."""


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
        period: The current `Period`, new on every state change; it is the ticket of every
            call admitted now.
        in_flight: Trial calls admitted in this HALF_OPEN period and not yet finished.
        trial_successes: Successful trials in this HALF_OPEN period.
        held: ``(failure_count, failure_rate)`` as they were when the breaker last left CLOSED:
            what it reports until it closes again (the rate window would otherwise age while
            nothing is recorded, and an OPEN breaker would show no failures).
    """

    __slots__ = (
        "held",
        "in_flight",
        "open_until",
        "opened_at",
        "period",
        "policy",
        "reject_until",
        "settings",
        "state",
        "timeout",
        "trial_successes",
    )

    def __init__(
        self, settings: MachineSettings, successes: itertools.count[int] | None = None
    ) -> None:
        """Args:
        settings: The state settings.
        successes: The lifetime success counter the rate window harvests lock-free
            successes from (the cell's; a private one by default).
        """
        self.settings = settings
        self.policy: ConsecutiveFailures | FailureRateWindow = (
            ConsecutiveFailures(settings.failure_threshold)
            if settings.failure_rate is None
            else FailureRateWindow(
                settings.failure_rate,
                settings.window,
                settings.minimum_calls,
                itertools.count() if successes is None else successes,
            )
        )
        self.state = CLOSED
        self.open_until = 0.0
        self.reject_until = -math.inf
        self.opened_at: float | None = None
        self.timeout = settings.recovery_timeout
        self.period = Period()
        self.in_flight = 0
        self.trial_successes = 0
        self.held: tuple[int, float | None] = (0, None)

    # -- queries ------------------------------------------------------------------------------
    # clean, peek and retry_after only read: safe without the breaker's lock. failure_count and
    # failure_rate turn the rate window to ``now``, which writes: hold the lock.

    @property
    def clean(self) -> Period | None:
        """The period when a success in it needs no judging, else ``None`` (the breaker's gate).

        That is CLOSED when the policy is quiet (no success could open the breaker; the rate
        window then takes successes without a lock), or DISABLED (nothing is judged).
        """
        state = self.state
        if state is DISABLED or (state is CLOSED and self.policy.quiet()):
            return self.period
        return None

    def peek(self, now: float) -> Period:
        """Answer an admission without changing anything, or return `LOCK`.

        Returns:
            A ticket (CLOSED or DISABLED: run it), `REJECT`, or `LOCK` when admitting needs
            a state change or a trial slot: then call `admit()` under the lock.
        """
        if now < self.reject_until:
            return REJECT
        state = self.state
        if state is CLOSED or state is DISABLED:
            return self.period
        return LOCK

    def retry_after(self, now: float) -> float:
        """Seconds until a trial call is admitted (0 when one would be now or never by time)."""
        left = self.reject_until - now
        return left if 0.0 < left < math.inf else 0.0

    def failure_count(self, now: float) -> int:
        """Failures the policy holds now (consecutive ones, or those in the rate window), or
        held since the breaker left CLOSED."""
        if self.state is CLOSED:
            count = self.policy.failure_count(now)
            self.period.until = self.policy.until()
            return count
        return self.held[0]

    def failure_rate(self, now: float) -> float | None:
        """The rate policy's failure share now, or held since the breaker left CLOSED; ``None``
        for the consecutive policy."""
        if self.state is CLOSED:
            rate = self.policy.failure_rate(now)
            self.period.until = self.policy.until()
            return rate
        return self.held[1]

    # -- events ---------------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        """Let time act: OPEN becomes HALF_OPEN once its recovery timeout has passed."""
        if self.state is OPEN and now >= self.open_until:
            self._set(HALF_OPEN, now)

    def admit(self, now: float) -> Period:
        """Decide whether a call may run now, taking a trial slot in HALF_OPEN.

        Returns:
            A ticket (the current period) that must come back through `success()`,
            `failure()` or `release()`, or `REJECT`.
        """
        self.poll(now)
        answer = self.peek(now)
        if answer is not LOCK:
            return answer
        if self.in_flight >= self.settings.half_open_max_calls:
            return REJECT
        self.in_flight += 1
        return self.period

    def success(self, now: float, ticket: Period) -> None:
        """Record a successful call admitted with ``ticket`` (a stale ticket counts nowhere)."""
        if ticket is not self.period:
            return
        state = self.state
        if state is CLOSED:
            self._judge(now, failed=False)
        elif state is HALF_OPEN:
            self.in_flight -= 1
            self.trial_successes += 1
            if self.trial_successes >= self.settings.success_threshold:
                self.timeout = self.settings.recovery_timeout
                self._set(CLOSED, now)

    def failure(self, now: float, ticket: Period) -> None:
        """Record a failed call admitted with ``ticket`` (a stale ticket counts nowhere)."""
        if ticket is not self.period:
            return
        state = self.state
        if state is CLOSED:
            self._judge(now, failed=True)
        elif state is HALF_OPEN:
            self.in_flight -= 1
            ceiling = self.settings.max_recovery_timeout
            if ceiling is not None:
                self.timeout = min(self.timeout * 2, ceiling)
            self._open(now)

    def release(self, ticket: Period) -> None:
        """A call ended without an outcome that counts: give back its trial slot, if any."""
        if ticket is self.period and self.state is HALF_OPEN:
            self.in_flight -= 1

    def force_open(self, now: float) -> None:
        """Hold the breaker open until `reset()`."""
        self.opened_at = now
        self._set(FORCED_OPEN, now)

    def disable(self, now: float) -> None:
        """Let every call through and count nothing until `reset()`."""
        self._set(DISABLED, now)

    def reset(self, now: float) -> None:
        """Back to a fresh CLOSED state with the base recovery timeout."""
        self.timeout = self.settings.recovery_timeout
        self.opened_at = None
        self._set(CLOSED, now)

    def force(self, state: CircuitState, now: float) -> None:
        """Start afresh in ``state``, as if the breaker had got there itself (for tests).

        OPEN has just opened with the base recovery timeout; HALF_OPEN has just let that
        timeout pass, so the next call is a trial.
        """
        self.reset(now)
        if state is OPEN:
            self._open(now)
        elif state is HALF_OPEN:
            self.opened_at = self.open_until = now
            self._set(HALF_OPEN, now)
        elif state is FORCED_OPEN:
            self.force_open(now)
        elif state is DISABLED:
            self.disable(now)

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
        if self.state is CLOSED:
            self.period.until = self.policy.until()

    # -- transitions ----------------------------------------------------------------------------

    def _judge(self, now: float, *, failed: bool) -> None:
        policy = self.policy
        policy.record(now, failed=failed)
        if policy.tripped():
            self._open(now)
        else:
            self.period.until = policy.until()

    def _set(self, state: CircuitState, now: float) -> None:
        # First of all, end the period: a lock-free success checks its period's ``until`` and
        # then counts at once, so from here on none lands in the period that is ending.
        self.period.until = -math.inf
        policy = self.policy
        if self.state is CLOSED and state is not CLOSED:
            # The figures it reports until it closes again (the window would age meanwhile).
            self.held = (policy.failure_count(now), policy.failure_rate(now))
        if state is CLOSED:
            policy.clear()  # a fresh CLOSED period judges only what happens from now on
        elif state is DISABLED:
            policy.park()
        self.state = state
        self.reject_until = (
            self.open_until if state is OPEN else math.inf if state is FORCED_OPEN else -math.inf
        )
        self.period = Period(math.inf if state is DISABLED else -math.inf)
        self.in_flight = 0
        self.trial_successes = 0

    def _open(self, now: float) -> None:
        self.opened_at = now
        self.open_until = now + self.timeout
        self._set(OPEN, now)
