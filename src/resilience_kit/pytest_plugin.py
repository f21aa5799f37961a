"""The resilience_kit pytest plugin: fixtures and a marker for testing code that uses it.

Installed with the package, it registers itself under the ``pytest11`` entry point as
``resilience_kit``; ``-p no:resilience_kit`` switches it off. Without an installation (say,
``PYTHONPATH=src``), load it with ``-p resilience_kit.pytest_plugin``.

What it gives every test, with no set-up:

* the transitions of every circuit breaker are recorded from the test's start, so
  [`resilience_kit.testing.assert_transitions()`][resilience_kit.testing.assert_transitions] just
  works;
* ``@pytest.mark.breaker_state("payments", "OPEN")`` starts the test with that breaker in that
  state (and resets it afterwards);
* a breaker created during a test that nothing outside the test holds any more gives its name
  back when the test ends, even when the test failed;
* a test that switches chaos injection on process-wide
  ([`resilience_kit.chaos.enable()`][resilience_kit.chaos.enable]) without switching it off again
  leaves the switch as it found it;

and the fixtures ``fake_clock``, ``breakers``, ``no_retry_waits`` and ``memory_cache``. The ini
option ``resilience_kit_no_retry_waits = true`` makes every retry in the run skip its sleeps.

Everything is process-wide rather than per task or thread, so it holds the same in plain,
pytest-asyncio and anyio tests, and in threads a test starts.

Imported at every pytest start, it loads only the breaker layer; the rest of the library
(retries, tenacity, `resilience_kit.testing`) loads when a fixture needs it.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import sys
import weakref
from collections.abc import Generator, Iterator, Mapping
from contextlib import ExitStack
from types import FrameType
from typing import TYPE_CHECKING

import pytest

from resilience_kit._transitions import _recorder, _Session
from resilience_kit.breaker import CircuitBreaker, CircuitState
from resilience_kit.breaker import breakers as _live_breakers
from resilience_kit.breaker._clocks import use_clock_everywhere
from resilience_kit.breaker._registry import every_breaker
from resilience_kit.clock import default_clock

if TYPE_CHECKING:
    from resilience_kit.cache import MemoryBackend
    from resilience_kit.testing import FakeClock

__all__ = ["breakers", "fake_clock", "memory_cache", "no_retry_waits"]

_NO_WAITS_INI = "resilience_kit_no_retry_waits"
_STATES = tuple(state.value for state in CircuitState)
_session_key = pytest.StashKey[_Session]()
_suite_key = pytest.StashKey[ExitStack]()
_errors_key = pytest.StashKey[list[BaseException]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ini option."""
    parser.addini(
        _NO_WAITS_INI,
        type="bool",
        default=False,
        help="resilience_kit: every retry in the run skips its sleeps (as the no_retry_waits "
        "fixture does for one test)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; switch retry waits off for the run if the ini option says so."""
    config.addinivalue_line(
        "markers",
        "breaker_state(name, state): start the test with the circuit breaker called NAME in "
        "STATE (CLOSED, OPEN, HALF_OPEN, FORCED_OPEN or DISABLED); it is reset afterwards",
    )
    if config.getini(_NO_WAITS_INI):
        from resilience_kit.testing import no_waits

        suite = ExitStack()
        suite.enter_context(no_waits())
        config.stash[_suite_key] = suite
        config.add_cleanup(suite.close)


# -- breakers created during a test -------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Give back the names of the breakers a test created and left to nobody else.

    A breaker frees its name when it is garbage-collected. After a test that is not always
    soon enough: a breaker may sit in a reference cycle, and a failed test's traceback keeps
    the test's local variables alive (pytest keeps the last one in ``sys.last_traceback``),
    so the next test could not create a breaker of that name. Here, after everything the
    test set up has been torn down and its failures reported, a breaker created during the
    test that is still registered is freed if it can be: the failures' frames drop their
    local variables, and a collection runs. One that survives that is held by something that
    outlives the test (a module, a longer-lived fixture) and keeps its name.
    """
    before = weakref.WeakSet(every_breaker())
    try:
        return (yield)
    finally:
        errors = item.stash.get(_errors_key, [])
        with contextlib.suppress(KeyError):
            del item.stash[_errors_key]
        if not all(breaker in before for breaker in every_breaker()):
            for error in errors:
                _clear_frames(error)
            del errors
            gc.collect()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's exception until the test is over (see pytest_runtest_protocol)."""
    report = yield
    if call.excinfo is not None:
        item.stash.setdefault(_errors_key, []).append(call.excinfo.value)
    return report


def _clear_frames(error: BaseException) -> None:
    """Drop the local variables of every finished frame in ``error``'s tracebacks.

    Its report is written by now; what stays is the exception in ``sys.last_value`` for a
    post-mortem, without the locals that would keep the test's objects alive.
    """
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        traceback = current.__traceback__
        while traceback is not None:
            _clear_frame(traceback.tb_frame)
            traceback = traceback.tb_next
        linked = (current.__cause__, current.__context__, *getattr(current, "exceptions", ()))
        pending.extend(e for e in linked if isinstance(e, BaseException))


_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _suspended(frame: FrameType) -> bool:
    """Whether ``frame`` belongs to a generator or coroutine that is still alive.

    Before Python 3.13, ``frame.clear()`` on such a frame closes its generator: a job worker or
    a server task that merely caught the test's error would be finalised under its owner.
    """
    if not frame.f_code.co_flags & _SUSPENDABLE:
        return False
    for owner in gc.get_referrers(frame):
        own_frame = getattr(owner, "gi_frame", None) or getattr(owner, "cr_frame", None)
        if own_frame is None:
            own_frame = getattr(owner, "ag_frame", None)
        if own_frame is frame:
            return True  # a finished one has dropped its frame (the attribute is None)
    return False


def _clear_frame(frame: FrameType) -> None:
    if _suspended(frame):
        return
    try:
        frame.clear()
    except RuntimeError:  # still running: left alone
        return
    if frame.f_code.co_flags & inspect.CO_OPTIMIZED:  # a function's: its locals are its own
        snapshot = frame.f_locals
        # Before 3.13, the dict of locals that formatting the traceback made survives clear().
        if isinstance(snapshot, dict):
            snapshot.clear()


# -- transitions --------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """Open the test's transition recording before any fixture runs."""
    item.stash[_session_key] = _recorder.start_session()
    return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Close the recording after every fixture has finished."""
    try:
        return (yield)
    finally:
        session = item.stash.get(_session_key, None)
        if session is not None:
            _recorder.end_session(session)


# -- the test itself: breaker_state markers, the chaos switch -----------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Apply ``breaker_state`` markers once every fixture is set up, undo them after the test.

    Here rather than in a fixture, so that the ``breakers`` fixture's reset and the test's own
    fixtures (which may create the breaker) have run first. The chaos switch is saved and
    restored around the test function too, not around its fixtures: a module-scoped fixture
    may hold chaos on across tests (``with chaos.enable(): yield``).
    """
    forced: list[CircuitBreaker] = []
    chaos_state = _save_chaos()
    try:
        for marker in reversed(list(item.iter_markers("breaker_state"))):
            breaker, state = _marked(marker)
            breaker._force_state(state)
            _recorder.rebase(breaker)
            forced.append(breaker)
        return (yield)
    finally:
        for breaker in forced:
            breaker.reset()
        _restore_chaos(chaos_state)


def _marked(marker: pytest.Mark) -> tuple[CircuitBreaker, CircuitState]:
    args = marker.args
    if len(args) != 2 or marker.kwargs or not all(isinstance(a, str) for a in args):
        pytest.fail(
            f"@pytest.mark.breaker_state takes two strings, a breaker name and a state, got "
            f"breaker_state{args!r}",
            pytrace=False,
        )
    name, state = args
    written = f"@pytest.mark.breaker_state({name!r}, {state!r})"
    if state.upper() not in _STATES:
        pytest.fail(
            f"{written}: cannot put breaker {name!r} in {state!r}, which is not a circuit "
            f"breaker state; use one of {', '.join(_STATES)} (in any case)",
            pytrace=False,
        )
    breaker = _live_breakers().get(name)
    if breaker is None:
        pytest.fail(
            f"{written}: no live circuit breaker is named {name!r}; import or create it before "
            "the test starts (at module level or in a fixture)",
            pytrace=False,
        )
    return breaker, CircuitState(state.upper())


_CHAOS = "resilience_kit.chaos"


def _save_chaos() -> object | None:
    """The process-wide chaos switch as it stands; None while chaos is not imported."""
    chaos = sys.modules.get(_CHAOS)
    return None if chaos is None else chaos._snapshot()


def _restore_chaos(state: object | None) -> None:
    """Put the chaos switch back as `_save_chaos()` found it.

    Switches a test left in effect without ``with`` are dropped; chaos first imported during
    the test goes back to its state at import (``None``). Chaos is never imported for this.
    """
    chaos = sys.modules.get(_CHAOS)
    if chaos is not None:
        chaos._restore(state)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """A [`FakeClock`][resilience_kit.testing.FakeClock] at ``t=0`` that runs the test's time.

    Every circuit breaker runs on it for the test: those created during the test, and those
    that already exist (module-level ones in your application). Afterwards each gets a real
    clock back with what was left of its timeouts: its own, or, for one created during the
    test (say a module-level breaker first imported inside it), the clock that was the
    default before the test. Retries created during the test (and anything else that reads
    [`default_clock()`][resilience_kit.clock.default_clock] when it is built) run on it too, and
    chaos latency advances it instead of sleeping; timeouts (``resilient(timeout=...)``,
    ``resilience_kit.timeout``) measure on it, so advancing it past a limit ends the call with
    ``TimeoutError``. When the test ends the clock itself goes on in real time, so such a retry
    sleeps for real in later tests. Cached functions read the library's clock at each call
    (unless given a ``clock=``): advancing it expires their entries.
    """
    from resilience_kit.testing import FakeClock, use_clock

    clock = FakeClock()
    previous = default_clock()
    restore = use_clock_everywhere(clock, then=previous)
    try:
        with use_clock(clock):
            yield clock
    finally:
        restore()
        clock._hand_over(previous)


@pytest.fixture
def no_retry_waits() -> Iterator[None]:
    """Every retry during the test runs its attempts without sleeping."""
    from resilience_kit.testing import no_waits

    with no_waits():
        yield


@pytest.fixture
def memory_cache() -> Iterator[MemoryBackend]:
    """A fresh [MemoryBackend][resilience_kit.cache.MemoryBackend] behind every cached function.

    For the test, every cached function (module-level ones in your application included, and
    those with a ``backend=`` of their own, Redis too) reads and writes this empty in-memory
    backend instead, and the cache statistics start from zero; afterwards each goes back to its
    own backend. Entry times follow the library's clock, so with ``fake_clock`` advancing time
    expires entries. The value is the backend (``memory_cache.size()``, ``memory_cache.clear()``).
    """
    from resilience_kit.cache import MemoryBackend, reset_cache_stats
    from resilience_kit.cache._backend import routing

    backend = MemoryBackend()
    previous = routing.override
    routing.override = backend
    reset_cache_stats()
    try:
        yield backend
    finally:
        routing.override = previous


class _LiveBreakers(Mapping[str, CircuitBreaker]):
    """Every live breaker by name, read afresh on each access."""

    def __getitem__(self, name: str) -> CircuitBreaker:
        return _live_breakers()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_live_breakers())

    def __len__(self) -> int:
        return len(_live_breakers())

    def __repr__(self) -> str:
        return f"<live breakers: {', '.join(_live_breakers()) or 'none'}>"


@pytest.fixture
def breakers() -> Iterator[Mapping[str, CircuitBreaker]]:
    """Isolate the test from the process's circuit breakers.

    Every registered breaker (module-level ones in your application included) starts the test
    as fresh as a new one: CLOSED, no failures, totals at zero; and is made so again
    afterwards, those created during the test included. A breaker created during the test
    that nothing else holds gives its name back when the test ends (as it does without this
    fixture), so the next test can create it again; one that a module holds keeps it. The
    value maps names to the live breakers.
    """
    for breaker in every_breaker():
        _refresh(breaker)
        _recorder.rebase(breaker)
    yield _LiveBreakers()
    for breaker in every_breaker():
        _refresh(breaker)


def _refresh(breaker: CircuitBreaker) -> None:
    breaker.reset()
    breaker._reset_totals()
