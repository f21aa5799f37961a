"""The resilience_kit pytest plugin: fixtures for testing code that uses it.

Installed with the package, it registers itself under the ``pytest11`` entry point as
``resilience_kit``; ``-p no:resilience_kit`` switches it off. Without an installation (say,
``PYTHONPATH=src``), load it with ``-p resilience_kit.pytest_plugin``.

Everything it installs is process-wide rather than per task or thread, so it holds the same in
plain, pytest-asyncio and anyio tests, and in threads a test starts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from resilience_kit.testing import FakeClock, use_clock

__all__ = ["fake_clock"]


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """A :class:`~resilience_kit.testing.FakeClock` at ``t=0``, the default clock for the test.

    Everything that reads :func:`~resilience_kit.clock.default_clock` when it is built during
    the test runs on it, and chaos latency advances it instead of sleeping. Primitives built
    before the test (at module level) keep the clock they were built with.
    """
    clock = FakeClock()
    with use_clock(clock):
        yield clock
