"""Recording circuit breakers' state transitions for tests (behind ``resilience_kit.testing``).

One process-wide breaker listener feeds every recording. It is installed the first time
something records and stays: a breaker pays for it only when it changes state, which is rare.

Two kinds of recording share it: ``record_transitions(breaker)`` hands out a log for one breaker
from now on, and the pytest plugin opens a *session* per test in which every breaker gets a log
from its first transition. ``assert_transitions`` reads the newest log of a breaker.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resilience_kit.breaker import CircuitState, add_global_listener
from resilience_kit.errors import ConfigurationError, ResilienceError

if TYPE_CHECKING:
    from resilience_kit.breaker import CircuitBreaker

__all__ = ["Transition", "TransitionLog", "assert_transitions", "record_transitions"]

_STATE_NAMES = tuple(state.value for state in CircuitState)


class Transition(tuple[str, str]):
    """One state change; equal to the tuple ``(old, new)`` of upper-case state names.

    Attributes:
        cause: What made it happen, in words, as the breaker tells its listeners
            (``"failure: ConnectionError('refused') (5/5 in a row)"``, ``"recovery timeout
            elapsed (30s)"``, ``"trial succeeded (1/1)"``, ``"reset()"``...).
    """

    cause: str

    def __new__(cls, old: str, new: str, cause: str) -> Transition:
        transition = super().__new__(cls, (old, new))
        transition.cause = cause
        return transition

    @property
    def old(self) -> str:
        """The state it left."""
        return self[0]

    @property
    def new(self) -> str:
        """The state it entered."""
        return self[1]


class TransitionLog(list[Transition]):
    """The live list of one breaker's transitions, appended to as they happen."""

    __slots__ = ("breaker_name",)

    def __init__(self, breaker_name: str) -> None:
        super().__init__()
        self.breaker_name = breaker_name


class _Session:
    """The logs of one recording scope (a pytest test, or the explicit records outside one)."""

    __slots__ = ("all_breakers", "logs")

    def __init__(self, *, all_breakers: bool) -> None:
        self.all_breakers = all_breakers
        self.logs: weakref.WeakKeyDictionary[CircuitBreaker, TransitionLog] = (
            weakref.WeakKeyDictionary()
        )


class _Recorder:
    """The one global listener; the innermost session receives what it hears."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions = [_Session(all_breakers=False)]
        self._listening = False

    def _listen(self) -> None:
        with self._lock:
            if not self._listening:
                add_global_listener(self)
                self._listening = True

    def on_state_change(
        self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState, cause: str = ""
    ) -> None:
        # Called after the breaker's lock is released, one transition at a time per breaker, in
        # order; transitions of different breakers may arrive from several threads at once.
        transition = Transition(str(old), str(new), cause)
        with self._lock:
            session = self._sessions[-1]
            log = session.logs.get(breaker)
            if log is None:
                if not session.all_breakers:
                    return
                log = session.logs[breaker] = TransitionLog(breaker.name)
            log.append(transition)

    def record(self, breaker: CircuitBreaker) -> TransitionLog:
        self._listen()
        log = TransitionLog(breaker.name)
        with self._lock:
            self._sessions[-1].logs[breaker] = log
        return log

    def log_of(self, breaker: CircuitBreaker) -> TransitionLog | None:
        with self._lock:
            session = self._sessions[-1]
            log = session.logs.get(breaker)
            if log is None and session.all_breakers:
                log = session.logs[breaker] = TransitionLog(breaker.name)
            return log

    def start_session(self) -> _Session:
        self._listen()
        session = _Session(all_breakers=True)
        with self._lock:
            self._sessions.append(session)
        return session

    def end_session(self, session: _Session) -> None:
        with self._lock:
            # Sessions nest (a test that runs pytest in-process opens one inside another).
            if session in self._sessions[1:]:
                del self._sessions[self._sessions.index(session) :]

    def rebase(self, breaker: CircuitBreaker) -> None:
        """Forget ``breaker``'s transitions so far: its current state is where the log starts."""
        with self._lock:
            session = self._sessions[-1]
            if breaker in session.logs:
                session.logs[breaker] = TransitionLog(breaker.name)


_recorder = _Recorder()


def record_transitions(breaker: CircuitBreaker) -> TransitionLog:
    """Start recording ``breaker``'s transitions; return the live list of ``(old, new)`` pairs.

    A [`TransitionLog`][resilience_kit.testing.TransitionLog] is a ``list[tuple[str, str]]`` for
    every purpose.

    The items are [`Transition`][resilience_kit.testing.Transition] tuples of upper-case state names
    whose ``cause`` says what made each one happen. Inside a pytest test the resilience_kit plugin
    already records every breaker from the test's start, so this is only needed outside pytest, or
    to start afresh in the middle of a test.
    """
    return _recorder.record(breaker)


def assert_transitions(breaker: CircuitBreaker, expected: Sequence[str | CircuitState]) -> None:
    """Assert the states ``breaker`` went through, starting with the one it started in.

    ``assert_transitions(b, ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"])`` passes when ``b`` was
    CLOSED when recording began, then opened, half-opened and closed again, and nothing else.

    Raises:
        AssertionError: The states differ; the message shows both sequences and every
            transition with the event that caused it.
        ConfigurationError: ``expected`` holds something that is not a state name.
        ResilienceError: Nothing records ``breaker`` (outside pytest, call
            [`record_transitions()`][resilience_kit.testing.record_transitions] first).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this function's source
    wanted = [_state_name(state) for state in expected]
    current = str(breaker.state)  # first: reading it may let time act, which is a transition
    log = _recorder.log_of(breaker)
    if log is None:
        raise ResilienceError(
            f"nothing records the transitions of breaker {breaker.name!r}: call "
            "record_transitions(breaker) first (the resilience_kit pytest plugin records every "
            "breaker inside a test)"
        )
    happened = list(log)  # a snapshot: other threads may still append
    actual = [happened[0].old, *(t.new for t in happened)] if happened else [current]
    if actual != wanted:
        raise AssertionError(_explain(breaker.name, wanted, actual, happened))


def _state_name(state: Any) -> str:
    name = str(state)
    if name not in _STATE_NAMES:
        raise ConfigurationError(
            f"expected must hold state names ({', '.join(_STATE_NAMES)}), got {state!r}",
            parameter="expected",
            value=state,
        )
    return name


def _explain(name: str, wanted: list[str], actual: list[str], log: list[Transition]) -> str:
    lines = [
        f"breaker {name!r} went through other states than expected",
        f"  expected: {' -> '.join(wanted)}",
        f"  actual:   {' -> '.join(actual)}",
    ]
    for index, (want, got) in enumerate(zip(wanted, actual)):  # noqa: B905 - lengths differ
        if want != got:
            lines.append(f"  first difference at state {index + 1}: expected {want}, got {got}")
            break
    else:
        shorter, longer = ("actual", wanted) if len(actual) < len(wanted) else ("expected", actual)
        missing = longer[min(len(wanted), len(actual)) :]
        lines.append(f"  {shorter} stops early; the rest: {' -> '.join(missing)}")
    if log:
        lines.append("  transitions:")
        lines.extend(
            f"    {number}. {t.old} -> {t.new}: {t.cause}" for number, t in enumerate(log, 1)
        )
    else:
        lines.append(f"  no transitions: it stayed {actual[0]}")
    return "\n".join(lines)
