"""The breaker against a small independent reference model, driven by hypothesis.

The model below is written from the API contract, not from the implementation: plain lists of
timestamped outcomes instead of bucket rings and lock-free tallies, explicit period numbers on
every admission. Random programs of calls (held open or not, in threads and tasks), outcomes,
clock advances and manual controls run against both, on clocks that start anywhere (negative
too); state, admissions, retry_after and every stat must agree after every step. Calls held open
across transitions check that an outcome counts only in the period it was admitted in.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
import queue
import threading
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from resilience_kit import CircuitBreaker, CircuitOpenError
from resilience_kit.testing import FakeClock

BUCKETS = 20  # the documented granularity of the rate window: window / 20


class Ignored(Exception):
    pass


class Counted(Exception):
    pass


OUTCOMES = ["ok", "fail", "ignored", "unlisted", "interrupt", "flagged"]


@dataclass
class Config:
    failure_threshold: int
    failure_rate: float | None
    window: float
    minimum_calls: int
    recovery_timeout: float
    max_recovery_timeout: float | None
    half_open_max_calls: int
    success_threshold: int
    slow_call_threshold: float | None
    failure_if: bool


# Clocks of any origin: negative ones, one that crosses zero during a run, a large one.
starts = st.sampled_from([0.0, -100.0, -2.5, 1e6])

configs = st.builds(
    Config,
    failure_threshold=st.integers(1, 4),
    failure_rate=st.none() | st.sampled_from([0.25, 0.5, 1.0]),
    window=st.sampled_from([4.0, 10.0]),
    minimum_calls=st.integers(1, 5),
    recovery_timeout=st.sampled_from([1.0, 3.0]),
    max_recovery_timeout=st.none() | st.sampled_from([3.0, 10.0]),
    half_open_max_calls=st.integers(1, 3),
    success_threshold=st.integers(1, 3),
    slow_call_threshold=st.none() | st.just(0.5),
    failure_if=st.booleans(),
)


@dataclass
class Model:
    cfg: Config
    state: str = "CLOSED"
    period: int = 0  # which stretch of one state an admission belongs to
    outcomes: list[tuple[float, bool]] = field(default_factory=list)  # (time, failed)
    streak: int = 0
    open_until: float = 0.0
    opened_at: float | None = None
    timeout: float = 0.0
    trials: int = 0
    trial_wins: int = 0
    successes: int = 0
    failures: int = 0
    rejected: int = 0
    uncounted: int = 0
    since_failure: int = 0
    last_failure: float | None = None
    held: tuple[int, float] = (0, 0.0)  # (failure count, rate) when it last left CLOSED

    def __post_init__(self) -> None:
        self.timeout = self.cfg.recovery_timeout

    def move(self, state: str, now: float | None = None) -> None:
        if self.state == "CLOSED" and state != "CLOSED":
            assert now is not None
            self.held = (self.live_failure_count(now), self.live_rate(now))
        self.state = state
        self.period += 1
        self.trials = self.trial_wins = 0

    def tick(self, now: float) -> None:
        if self.state == "OPEN" and now >= self.open_until:
            self.move("HALF_OPEN")

    def window_outcomes(self, now: float) -> list[bool]:
        # Bucket numbers are the floored quotient (``//``), exact even where ``a / b`` rounds.
        width = self.cfg.window / BUCKETS
        oldest = now // width - BUCKETS
        return [failed for at, failed in self.outcomes if at // width > oldest]

    def live_failure_count(self, now: float) -> int:
        if self.cfg.failure_rate is None:
            return self.streak
        return sum(self.window_outcomes(now))

    def live_rate(self, now: float) -> float:
        window = self.window_outcomes(now)
        return sum(window) / len(window) if window else 0.0

    # The contract: while not CLOSED, the figures it left CLOSED with (an OPEN breaker shows
    # the failures that opened it, however old they get).
    def failure_count(self, now: float) -> int:
        return self.live_failure_count(now) if self.state == "CLOSED" else self.held[0]

    def rate(self, now: float) -> float:
        return self.live_rate(now) if self.state == "CLOSED" else self.held[1]

    def admit(self, now: float) -> tuple[str, int] | None:
        self.tick(now)
        if self.state in ("CLOSED", "DISABLED"):
            return ("normal", self.period)
        if self.state == "HALF_OPEN" and self.trials < self.cfg.half_open_max_calls:
            self.trials += 1
            return ("trial", self.period)
        self.rejected += 1
        return None

    def retry_after(self, now: float) -> float:
        return max(0.0, self.open_until - now) if self.state == "OPEN" else 0.0

    def open(self, now: float) -> None:
        self.opened_at = now
        self.open_until = now + self.timeout
        self.move("OPEN", now)

    def close(self) -> None:
        self.outcomes.clear()
        self.streak = 0
        self.move("CLOSED")

    def judge(self, now: float, failed: bool) -> None:
        if self.cfg.failure_rate is None:
            self.streak = self.streak + 1 if failed else 0
            if self.streak >= self.cfg.failure_threshold:
                self.open(now)
            return
        self.outcomes.append((now, failed))
        window = self.window_outcomes(now)
        if (
            len(window) >= self.cfg.minimum_calls
            and sum(window) / len(window) >= self.cfg.failure_rate
        ):
            self.open(now)

    def finish(self, ticket: tuple[str, int], now: float, outcome: str, duration: float) -> None:
        cfg = self.cfg
        slow = cfg.slow_call_threshold is not None and duration > cfg.slow_call_threshold
        if outcome in ("ignored", "unlisted", "interrupt"):
            self.uncounted += 1
            if ticket[0] == "trial" and ticket[1] == self.period:
                self.trials -= 1
            return
        failed = outcome == "fail" or slow or (outcome == "flagged" and cfg.failure_if)
        if failed:
            self.failures += 1
            self.since_failure = 0
            self.last_failure = now
        else:
            self.successes += 1
            self.since_failure += 1
        if ticket[1] != self.period:
            return  # admitted before a transition: it counts in no later period
        if ticket[0] == "normal":
            if self.state == "CLOSED":
                self.judge(now, failed)
        else:
            self.trials -= 1
            if failed:
                if cfg.max_recovery_timeout is not None:
                    self.timeout = min(self.timeout * 2, cfg.max_recovery_timeout)
                self.open(now)
            else:
                self.trial_wins += 1
                if self.trial_wins >= cfg.success_threshold:
                    self.timeout = cfg.recovery_timeout
                    self.close()

    def reset(self) -> None:
        self.timeout = self.cfg.recovery_timeout
        self.opened_at = None
        self.since_failure = 0
        self.last_failure = None
        self.close()


def perform(outcome: str) -> Any:
    if outcome == "fail":
        raise Counted
    if outcome == "ignored":
        raise Ignored
    if outcome == "unlisted":
        raise LookupError
    if outcome == "interrupt":
        raise KeyboardInterrupt
    return "BAD" if outcome == "flagged" else "good"


EXPECTED_ERRORS = (Counted, Ignored, LookupError, KeyboardInterrupt)


@dataclass
class Pending:
    context: contextvars.Context
    ticket: tuple[str, int]
    started: float


class Hold:
    """Awaited by a decorated async call: it suspends there until a later rule finishes it."""

    outcome = "ok"

    def __await__(self) -> Generator[Any, None, str]:
        yield self
        return self.outcome


@dataclass
class HeldAsync:
    """A call through the async decorator, suspended inside the guarded function."""

    coroutine: Coroutine[Any, Any, Any]
    hold: Hold
    ticket: tuple[str, int]
    started: float


@dataclass
class HeldThread:
    """A call through the sync decorator, blocked inside the guarded function in a thread."""

    thread: threading.Thread
    release: threading.Event
    events: queue.Queue[tuple[str, Any]]
    box: dict[str, str]
    ticket: tuple[str, int]
    started: float


class BreakerVersusModel(RuleBasedStateMachine):
    @initialize(cfg=configs, start=starts)
    def build(self, cfg: Config, start: float) -> None:
        self.clock = FakeClock(start=start)
        self.model = Model(cfg)
        self.breaker = CircuitBreaker(
            "model",
            failure_threshold=cfg.failure_threshold,
            failure_rate=cfg.failure_rate,
            window=cfg.window,
            minimum_calls=cfg.minimum_calls,
            recovery_timeout=cfg.recovery_timeout,
            max_recovery_timeout=cfg.max_recovery_timeout,
            half_open_max_calls=cfg.half_open_max_calls,
            success_threshold=cfg.success_threshold,
            slow_call_threshold=cfg.slow_call_threshold,
            failure_on=(Counted, Ignored),
            ignore=(Ignored,),
            failure_if=(lambda result: result == "BAD") if cfg.failure_if else None,
            clock=self.clock,
        )
        self.guarded = self.breaker(self._run)
        self.guarded_async = self.breaker(self._run_held_async)
        self.guarded_blocking = self.breaker(self._run_held_blocking)
        self.pending: list[Pending] = []
        self.held_async: list[HeldAsync] = []
        self.held_threads: list[HeldThread] = []

    def _run(self, outcome: str, duration: float) -> Any:
        self.clock.advance(duration)
        return perform(outcome)

    async def _run_held_async(self, hold: Hold) -> Any:
        return perform(await hold)

    @staticmethod
    def _run_held_blocking(
        release: threading.Event, events: queue.Queue[tuple[str, Any]], box: dict[str, str]
    ) -> Any:
        events.put(("entered", None))
        release.wait()
        return perform(box["outcome"])

    def teardown(self) -> None:
        for held in getattr(self, "held_threads", []):
            held.box["outcome"] = "ok"
            held.release.set()
            held.thread.join()
        for suspended in getattr(self, "held_async", []):
            suspended.coroutine.close()
        if hasattr(self, "breaker"):
            self.breaker.unregister()

    @staticmethod
    def check_end(outcome: str, raised: BaseException | None) -> None:
        """A held call's outcome as the caller saw it, then the model's account of it."""
        if outcome in ("ok", "flagged"):
            assert raised is None
        else:
            assert isinstance(raised, EXPECTED_ERRORS)

    # Calls held open through the decorators: each one starts on the fast path when the breaker
    # is clean, and ends after whatever other rules ran in between (a failure recorded while a
    # call runs must not make the call's later success count for less).
    @rule()
    def start_decorated_async_call(self) -> None:
        now = self.clock.monotonic()
        ticket = self.model.admit(now)
        hold = Hold()
        coroutine = self.guarded_async(hold)
        try:
            coroutine.send(None)
        except CircuitOpenError:
            assert ticket is None
            return
        assert ticket is not None
        self.held_async.append(HeldAsync(coroutine, hold, ticket, now))

    @precondition(lambda self: bool(self.held_async))
    @rule(
        data=st.data(), outcome=st.sampled_from(["ok", "fail", "ignored", "interrupt", "flagged"])
    )
    def finish_decorated_async_call(self, data: st.DataObject, outcome: str) -> None:
        held = self.held_async.pop(data.draw(st.integers(0, len(self.held_async) - 1)))
        held.hold.outcome = outcome
        raised: BaseException | None = None
        try:
            held.coroutine.send(None)
        except StopIteration as stop:
            assert stop.value == ("BAD" if outcome == "flagged" else "good")
        except EXPECTED_ERRORS as error:
            raised = error
        self.check_end(outcome, raised)
        now = self.clock.monotonic()
        self.model.finish(held.ticket, now, outcome, now - held.started)

    @rule()
    def start_decorated_blocking_call(self) -> None:
        now = self.clock.monotonic()
        ticket = self.model.admit(now)
        release = threading.Event()
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        box = {"outcome": "ok"}

        def caller() -> None:
            try:
                result = self.guarded_blocking(release, events, box)
            except BaseException as error:  # handed to the rule that ends the call
                events.put(("raised", error))
            else:
                events.put(("returned", result))

        thread = threading.Thread(target=caller)
        thread.start()
        what, value = events.get()
        if what == "raised":
            thread.join()
            assert isinstance(value, CircuitOpenError)
            assert ticket is None
            return
        assert what == "entered"
        assert ticket is not None
        self.held_threads.append(HeldThread(thread, release, events, box, ticket, now))

    @precondition(lambda self: bool(self.held_threads))
    @rule(
        data=st.data(), outcome=st.sampled_from(["ok", "fail", "ignored", "interrupt", "flagged"])
    )
    def finish_decorated_blocking_call(self, data: st.DataObject, outcome: str) -> None:
        held = self.held_threads.pop(data.draw(st.integers(0, len(self.held_threads) - 1)))
        held.box["outcome"] = outcome
        held.release.set()
        held.thread.join()
        what, value = held.events.get_nowait()
        if what == "returned":
            assert value == ("BAD" if outcome == "flagged" else "good")
        self.check_end(outcome, value if what == "raised" else None)
        now = self.clock.monotonic()
        self.model.finish(held.ticket, now, outcome, now - held.started)

    @rule(outcome=st.sampled_from(["ok", "fail"]))
    def quick_call(self, outcome: str) -> None:
        self.call(outcome, 0.0)

    @rule(outcome=st.sampled_from(OUTCOMES), duration=st.sampled_from([0.0, 0.25, 1.0]))
    def call(self, outcome: str, duration: float) -> None:
        now = self.clock.monotonic()
        ticket = self.model.admit(now)
        try:
            result = self.guarded(outcome, duration)
        except CircuitOpenError as error:
            assert ticket is None
            assert error.retry_after == self.model.retry_after(now)
            assert str(error.state) == self.model.state
            return
        except EXPECTED_ERRORS:
            assert ticket is not None
        else:
            assert ticket is not None
            assert result == ("BAD" if outcome == "flagged" else "good")
        self.model.finish(ticket, self.clock.monotonic(), outcome, duration)

    @rule()
    def start_held_call(self) -> None:
        now = self.clock.monotonic()
        ticket = self.model.admit(now)
        context = contextvars.copy_context()
        try:
            context.run(self.breaker.__enter__)
        except CircuitOpenError:
            assert ticket is None
            return
        assert ticket is not None
        self.pending.append(Pending(context, ticket, now))

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), outcome=st.sampled_from(["ok", "fail", "ignored", "interrupt"]))
    def finish_held_call(self, data: st.DataObject, outcome: str) -> None:
        held = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        error: BaseException | None = None
        try:
            perform(outcome)
        except BaseException as raised:
            error = raised
        held.context.run(self.breaker.__exit__, type(error) if error else None, error, None)
        now = self.clock.monotonic()
        self.model.finish(held.ticket, now, outcome, now - held.started)

    # Exact binary fractions, so time lands exactly on recovery deadlines too.
    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 3.0, 8.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # One rule for all manual controls, mostly resets: force_open and disable park the
    # breaker until a reset, and the interesting paths need it running.
    @rule(action=st.sampled_from(["force_open", "disable", "reset", "reset", "reset"]))
    def manual(self, action: str) -> None:
        getattr(self.breaker, action)()
        now = self.clock.monotonic()
        if action == "force_open":
            self.model.opened_at = now
            self.model.move("FORCED_OPEN", now)
        elif action == "disable":
            self.model.move("DISABLED", now)
        else:
            self.model.reset()

    @invariant()
    def agree(self) -> None:
        if not hasattr(self, "breaker"):
            return
        now = self.clock.monotonic()
        self.model.tick(now)
        model = self.model
        stats = self.breaker.stats()
        assert str(stats.state) == model.state
        assert str(self.breaker.state) == model.state
        assert stats.failure_count == model.failure_count(now)
        assert stats.retry_after == model.retry_after(now)
        assert (stats.total_successes, stats.total_failures, stats.total_rejected) == (
            model.successes,
            model.failures,
            model.rejected,
        )
        assert stats.total_calls == (
            model.successes + model.failures + model.rejected + model.uncounted
        )
        assert stats.consecutive_successes == model.since_failure
        wall = self.clock.wall()
        for got, at in (
            (stats.opened_at, model.opened_at),
            (stats.last_failure, model.last_failure),
        ):
            assert (got is None) == (at is None)
            if got is not None and at is not None:
                assert math.isclose(got, wall - (now - at), abs_tol=1e-6)
        if model.cfg.failure_rate is not None:
            assert stats.failure_rate == model.rate(now)


BreakerVersusModel.TestCase.settings = settings(
    BreakerVersusModel.TestCase.settings, stateful_step_count=80
)
TestBreakerVersusModel = BreakerVersusModel.TestCase


class PlainBreakerVersusModel(BreakerVersusModel):
    """The same, on breakers whose decorated calls take the fast path while clean (no
    ``failure_if``, no slow-call threshold), where races between a call's start and its end
    would hide: every example explores them."""

    @initialize(
        cfg=configs.map(
            lambda cfg: dataclasses.replace(cfg, failure_if=False, slow_call_threshold=None)
        ),
        start=starts,
    )
    def build(self, cfg: Config, start: float) -> None:
        super().build(cfg, start)


# Cheap examples, and the interleavings it is here for need a few exact steps: many examples.
PlainBreakerVersusModel.TestCase.settings = settings(
    PlainBreakerVersusModel.TestCase.settings,
    stateful_step_count=40,
    max_examples=5 * settings.default.max_examples,
)
TestPlainBreakerVersusModel = PlainBreakerVersusModel.TestCase
