"""The pytest plugin, tested by running pytest on users' test files (pytester)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

Run = Callable[..., pytest.RunResult]  # the `run` fixture in conftest.py


def test_the_entry_point_loads_the_fixtures(run: Run) -> None:
    run("--fixtures").stdout.fnmatch_lines(["fake_clock -- *"])


def test_p_no_resilience_kit_switches_it_off(run: Run) -> None:
    files = {
        "test_clock": """
            def test_clock(fake_clock):
                pass
        """,
    }
    assert run(subprocess=True, **files).ret == 0
    result = run("-p", "no:resilience_kit", subprocess=True, **files)
    result.stdout.fnmatch_lines(["*fixture 'fake_clock' not found*"])
    assert result.ret != 0


def test_importing_the_library_does_not_import_pytest() -> None:
    code = (
        "import sys, resilience_kit, resilience_kit.testing, resilience_kit.chaos\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_fake_clock_is_the_default_clock_for_the_test_only(run: Run) -> None:
    result = run(
        test_clock="""
            from resilience_kit.clock import SYSTEM_CLOCK, default_clock
            from resilience_kit.testing import FakeClock

            def test_installed(fake_clock):
                assert isinstance(fake_clock, FakeClock)
                assert default_clock() is fake_clock
                assert fake_clock.monotonic() == 0.0

            def test_put_back_after_the_test():
                assert default_clock() is SYSTEM_CLOCK
        """
    )
    result.assert_outcomes(passed=2)


def _async_chaos_test(marker: str) -> str:
    return f"""
        import pytest
        from resilience_kit import chaos

        @chaos.inject(latency=(1.0, 2.0), seed=1, enabled=True)
        async def lookup():
            return "value"

        {marker}
        async def test_latency_without_sleeping(fake_clock):
            assert await lookup() == "value"
            assert 1.0 <= fake_clock.monotonic() <= 2.0
    """


def test_chaos_latency_advances_the_fake_clock(run: Run) -> None:
    result = run(
        test_sync="""
            from resilience_kit import chaos

            @chaos.inject(latency=30.0, enabled=True)
            def lookup():
                return "value"

            def test_latency_without_sleeping(fake_clock):
                assert lookup() == "value"
                assert fake_clock.monotonic() == 30.0
        """,
        test_asyncio=_async_chaos_test("@pytest.mark.asyncio"),
        test_anyio=_async_chaos_test("@pytest.mark.anyio")
        + """
        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """,
    )
    result.assert_outcomes(passed=3)
