"""The resilience_kit pytest plugin: fixtures and a marker for testing code that uses it.

Installed with the package, it registers itself under the ``pytest11`` entry point as
``resilience_kit``; ``-p no:resilience_kit`` switches it off. Without an installation (say,
``PYTHONPATH=src``), load it with ``-p resilience_kit.pytest_plugin``.

What it gives every test, with no set-up:

* the transitions of every circuit breaker are recorded from the test's start, so
  :func:`resilience_kit.testing.assert_transitions` just works;
* ``@pytest.mark.breaker_state("payments", "OPEN")`` starts the test with that breaker in that
  state (and resets it afterwards);

and the fixtures ``fake_clock``, ``breakers`` and ``no_retry_waits``. The ini option
``resilience_kit_no_retry_waits = true`` makes every retry in the run skip its sleeps.

Everything is process-wide rather than per task or thread, so it holds the same in plain,
pytest-asyncio and anyio tests, and in threads a test starts.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from contextlib import ExitStack

import pytest

from resilience_kit._transitions import _recorder, _Session
from resilience_kit.breaker import CircuitBreaker
from resilience_kit.breaker import breakers as _live_breakers
from resilience_kit.breaker._breaker import use_clock_everywhere
from resilience_kit.testing import FakeClock, force_state, no_waits, use_clock

__all__ = ["breakers", "fake_clock", "no_retry_waits"]

_NO_WAITS_INI = "resilience_kit_no_retry_waits"
_session_key = pytest.StashKey[_Session]()
_suite_key = pytest.StashKey[ExitStack]()


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
        suite = ExitStack()
        suite.enter_context(no_waits())
        config.stash[_suite_key] = suite
        config.add_cleanup(suite.close)


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Apply ``breaker_state`` markers once every fixture is set up, undo them after the test.

    Here rather than in a fixture, so that the ``breakers`` fixture's reset and the test's own
    fixtures (which may create the breaker) have run first.
    """
    forced: list[CircuitBreaker] = []
    try:
        for marker in reversed(list(item.iter_markers("breaker_state"))):
            name, state = _marker_arguments(marker)
            breaker = _live_breakers().get(name)
            if breaker is None:
                pytest.fail(
                    f"@pytest.mark.breaker_state({name!r}, {state!r}): no live circuit breaker "
                    f"is named {name!r}; import or create it before the test starts (at module "
                    "level or in a fixture)",
                    pytrace=False,
                )
            force_state(breaker, state)
            _recorder.rebase(breaker)
            forced.append(breaker)
        return (yield)
    finally:
        for breaker in forced:
            breaker.reset()


def _marker_arguments(marker: pytest.Mark) -> tuple[str, str]:
    if len(marker.args) != 2 or marker.kwargs or not all(isinstance(a, str) for a in marker.args):
        pytest.fail(
            f"@pytest.mark.breaker_state takes two strings, a breaker name and a state, got "
            f"breaker_state{marker.args!r}",
            pytrace=False,
        )
    return marker.args[0], marker.args[1]


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """A :class:`~resilience_kit.testing.FakeClock` at ``t=0`` that runs the test's time.

    Every circuit breaker runs on it for the test: those created during the test, and those
    that already exist (module-level ones in your application), which get their own clock
    back afterwards with what was left of their timeouts. Retries created during the test
    (and anything else that reads :func:`~resilience_kit.clock.default_clock` when it is
    built) run on it too, and chaos latency advances it instead of sleeping.
    """
    clock = FakeClock()
    restore = use_clock_everywhere(clock)
    try:
        with use_clock(clock):
            yield clock
    finally:
        restore()


@pytest.fixture
def no_retry_waits() -> Iterator[None]:
    """Every retry during the test runs its attempts without sleeping."""
    with no_waits():
        yield


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
    afterwards. Breakers created during the test give their names back, so the next test can
    create them again. The value maps names to the live breakers.
    """
    before = set(_live_breakers().values())
    for breaker in before:
        _refresh(breaker)
        _recorder.rebase(breaker)
    yield _LiveBreakers()
    for breaker in _live_breakers().values():
        if breaker in before:
            _refresh(breaker)
        else:
            breaker.unregister()


def _refresh(breaker: CircuitBreaker) -> None:
    breaker.reset()
    breaker._reset_totals()
