"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from importlib.metadata import entry_points

import pytest
from hypothesis import HealthCheck, settings


def _plugin_is_installed() -> bool:
    return any(
        entry.value == "resilience_kit.pytest_plugin" for entry in entry_points(group="pytest11")
    )


# Tests that run pytest (the resilience_kit plugin's tests) need pytester; it only adds fixtures.
# The resilience_kit plugin is live in the suite of every project that installs the package,
# this one included (nox installs it editable); from a bare source tree (PYTHONPATH=src) it is
# loaded here, so this suite always runs with it and shows it disturbs nothing.
pytest_plugins = ["pytester"]
if not _plugin_is_installed():
    pytest_plugins.append("resilience_kit.pytest_plugin")

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def fake_clock():  # type: ignore[no-untyped-def]
    """A fresh FakeClock at t=0."""
    from resilience_kit.testing import FakeClock

    return FakeClock()


def _skips_forbidden() -> bool:
    return os.environ.get("RESILIENCE_KIT_REQUIRE_SERVICES") == "1"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (RESILIENCE_KIT_REQUIRE_SERVICES=1) a skipped test fails the run: nothing hides."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if _skips_forbidden() and exitstatus == 0 and reporter and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if _skips_forbidden() and skipped:
        terminalreporter.write_line(
            f"FAILED: {len(skipped)} test(s) skipped while RESILIENCE_KIT_REQUIRE_SERVICES=1 "
            "forbids skipping",
            red=True,
        )
