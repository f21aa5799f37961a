"""Fixtures shared by every test layer."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Tests that run pytest (the resilience_kit plugin's tests) need pytester; it only adds fixtures.
pytest_plugins = ["pytester"]

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
