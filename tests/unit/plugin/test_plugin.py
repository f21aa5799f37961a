"""The pytest plugin, tested by running pytest on users' test files (pytester)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

Run = Callable[..., pytest.RunResult]  # the `run` fixture in conftest.py

APP = """
    from resilience_kit import CircuitBreaker

    payments = CircuitBreaker("payments", failure_threshold=2, recovery_timeout=30)

    @payments
    def charge(gateway, amount):
        return gateway(amount)

    def down(amount):
        raise ConnectionError("gateway down")
"""


def test_the_entry_point_loads_the_fixtures_marker_and_ini_option(run: Run) -> None:
    result = run("--fixtures")
    result.stdout.fnmatch_lines_random(["fake_clock -- *", "breakers -- *", "no_retry_waits -- *"])
    run("--markers").stdout.fnmatch_lines(["@pytest.mark.breaker_state(name, state):*"])
    run("--help").stdout.fnmatch_lines(["*resilience_kit_no_retry_waits*"])


def test_p_no_resilience_kit_switches_it_off(run: Run) -> None:
    files = {
        "shop": APP,
        "test_user_clock": """
            def test_clock(fake_clock):
                pass
        """,
        "test_user_marker": """
            import pytest
            import shop

            @pytest.mark.breaker_state("payments", "OPEN")
            def test_marker():
                assert str(shop.payments.state) == "OPEN"
        """,
    }
    assert run(subprocess=True, **files).ret == 0
    result = run(
        "-p", "no:resilience_kit", "--continue-on-collection-errors", subprocess=True, **files
    )
    result.stdout.fnmatch_lines_random(
        [
            "*fixture 'fake_clock' not found*",
            "*'breaker_state' not found in `markers` configuration option*",
        ]
    )
    assert result.ret != 0


def test_the_plugin_is_active_in_this_suite(pytestconfig: pytest.Config) -> None:
    """The project's own suite runs with the plugin loaded, as a user's suite does."""
    import resilience_kit.pytest_plugin as plugin

    if pytestconfig.pluginmanager.is_blocked("resilience_kit"):
        pytest.skip("the run switched the plugin off with -p no:resilience_kit")
    assert pytestconfig.pluginmanager.is_registered(plugin)


def test_importing_the_library_does_not_import_pytest() -> None:
    code = (
        "import sys, resilience_kit, resilience_kit.testing, resilience_kit.chaos\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


# -- fake_clock ---------------------------------------------------------------------------------


def test_fake_clock_runs_every_breaker_created_in_the_test(run: Run) -> None:
    result = run(
        test_user_clock="""
            from resilience_kit import CircuitBreaker, CircuitOpenError
            from resilience_kit.clock import SYSTEM_CLOCK, default_clock
            import pytest

            def test_recovery_without_sleeping(fake_clock):
                assert default_clock() is fake_clock
                breaker = CircuitBreaker("fc-search", failure_threshold=1, recovery_timeout=30)
                with pytest.raises(ConnectionError):
                    breaker.call(lambda: (_ for _ in ()).throw(ConnectionError()))
                with pytest.raises(CircuitOpenError) as rejected:
                    breaker.call(lambda: "ok")
                assert rejected.value.retry_after == 30
                fake_clock.advance(30)
                assert breaker.call(lambda: "ok") == "ok"
                assert str(breaker.state) == "CLOSED"

            def test_the_clock_is_put_back_after_the_test():
                assert default_clock() is SYSTEM_CLOCK
        """
    )
    result.assert_outcomes(passed=2)


def test_fake_clock_reaches_a_module_level_breaker_and_gives_its_clock_back(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_module_clock="""
            import pytest
            from shop import charge, down, payments
            from resilience_kit import CircuitOpenError
            from resilience_kit.testing import assert_transitions

            def ok(amount):
                return amount

            def trip():
                for _ in range(2):
                    with pytest.raises(ConnectionError):
                        charge(down, 1)

            def test_recovery_driven_by_the_fake_clock(fake_clock, breakers):
                trip()
                with pytest.raises(CircuitOpenError) as rejected:
                    charge(ok, 1)
                assert rejected.value.retry_after == 30
                fake_clock.advance(29.5)
                with pytest.raises(CircuitOpenError):
                    charge(ok, 1)
                fake_clock.advance(0.5)
                assert charge(ok, 7) == 7
                assert_transitions(payments, ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"])

            def test_left_open_with_20_seconds_to_go(fake_clock):
                trip()
                fake_clock.advance(10)

            def test_the_system_clock_is_back_with_what_was_left():
                with pytest.raises(CircuitOpenError) as rejected:
                    charge(ok, 1)
                assert 19 < rejected.value.retry_after <= 20
        """,
    )
    result.assert_outcomes(passed=3)


# -- transitions --------------------------------------------------------------------------------


def test_assert_transitions_needs_no_set_up_and_explains_a_mismatch(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_transitions="""
            import pytest
            from shop import charge, down, payments
            from resilience_kit.testing import assert_transitions

            def trip():
                for _ in range(2):
                    with pytest.raises(ConnectionError):
                        charge(down, 10)

            def test_passes(breakers):
                assert_transitions(payments, ["CLOSED"])
                trip()
                payments.reset()
                assert_transitions(payments, ["CLOSED", "OPEN", "CLOSED"])

            def test_fails(breakers):
                trip()
                payments.force_open()
                assert_transitions(payments, ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"])
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       assert_transitions(payments, [[]*[]])",
            "E       AssertionError: breaker 'payments' went through other states than expected",
            "E         expected: CLOSED -> OPEN -> HALF_OPEN -> CLOSED",
            "E         actual:   CLOSED -> OPEN -> FORCED_OPEN",
            "E         first difference at state 3: expected HALF_OPEN, got FORCED_OPEN",
            "E         transitions:",
            "E           1. CLOSED -> OPEN: failure: ConnectionError('gateway down') "
            "(2/2 in a row)",
            "E           2. OPEN -> FORCED_OPEN: force_open()",
            "",
            "test_user_transitions.py:20: AssertionError",
        ]
    )


def test_each_test_records_from_its_own_start(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_fresh="""
            import pytest
            from shop import charge, down, payments
            from resilience_kit.testing import assert_transitions

            def test_opens_it():
                for _ in range(2):
                    with pytest.raises(ConnectionError):
                        charge(down, 1)
                assert_transitions(payments, ["CLOSED", "OPEN"])

            def test_sees_no_transition_of_the_test_before():
                assert_transitions(payments, ["OPEN"])  # left open: no `breakers` fixture
                payments.reset()
                assert_transitions(payments, ["OPEN", "CLOSED"])
        """,
    )
    result.assert_outcomes(passed=2)


# -- breakers -----------------------------------------------------------------------------------


def test_breakers_isolates_tests_from_each_other(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_isolation="""
            import pytest
            from shop import charge, down, payments
            from resilience_kit import CircuitBreaker, CircuitOpenError

            kept = []

            def test_one_opens_it_and_creates_a_breaker(breakers):
                for _ in range(2):
                    with pytest.raises(ConnectionError):
                        charge(down, 1)
                with pytest.raises(CircuitOpenError):
                    charge(lambda amount: amount, 1)
                kept.append(CircuitBreaker("iso-temporary"))
                assert breakers["payments"] is payments
                assert set(breakers) >= {"payments", "iso-temporary"}

            def test_two_finds_it_closed_and_the_name_free(breakers):
                assert str(payments.state) == "CLOSED"
                assert charge(lambda amount: amount * 2, 21) == 42
                again = CircuitBreaker("iso-temporary")  # the name was given back
                assert breakers["iso-temporary"] is again
        """,
    )
    result.assert_outcomes(passed=2)


def test_breakers_zeroes_the_totals_of_every_breaker(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_totals="""
            import pytest
            from shop import charge, down, payments

            def test_one_counts_calls():
                charge(lambda amount: amount, 1)
                with pytest.raises(ConnectionError):
                    charge(down, 1)
                assert payments.stats().total_calls == 2

            def test_two_starts_from_zero(breakers):
                stats = payments.stats()
                assert (stats.total_calls, stats.total_failures, stats.failure_count) == (0, 0, 0)
                charge(lambda amount: amount, 1)
                assert payments.stats().total_successes == 1

            def test_three_finds_zero_again_after_the_fixture():
                assert payments.stats().total_calls == 0
        """,
    )
    result.assert_outcomes(passed=3)


def test_without_breakers_state_leaks_between_tests(run: Run) -> None:
    """The control for the test above: the fixture is what isolates."""
    result = run(
        shop=APP,
        test_user_leak="""
            import pytest
            from shop import charge, down, payments
            from resilience_kit import CircuitBreaker

            kept = []

            def test_one():
                for _ in range(2):
                    with pytest.raises(ConnectionError):
                        charge(down, 1)
                kept.append(CircuitBreaker("leak-temporary"))

            def test_two():
                assert str(payments.state) == "OPEN"
                CircuitBreaker("leak-temporary")
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*name must be unique among live breakers*leak-temporary*"])


# -- breaker_state ------------------------------------------------------------------------------


def test_breaker_state_starts_the_test_in_that_state(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_marker="""
            import pytest
            from shop import charge, payments
            from resilience_kit import CircuitBreaker, CircuitOpenError
            from resilience_kit.testing import assert_transitions

            @pytest.mark.breaker_state("payments", "OPEN")
            def test_open(breakers):
                with pytest.raises(CircuitOpenError) as rejected:
                    charge(lambda amount: amount, 1)
                assert rejected.value.retry_after == pytest.approx(30, abs=1)
                assert_transitions(payments, ["OPEN"])

            def test_reset_afterwards():
                assert str(payments.state) == "CLOSED"

            @pytest.mark.breaker_state("payments", "HALF_OPEN")
            def test_half_open():
                assert charge(lambda amount: amount, 5) == 5
                assert_transitions(payments, ["HALF_OPEN", "CLOSED"])

            @pytest.mark.breaker_state("payments", "FORCED_OPEN")
            def test_forced_open():
                assert str(payments.state) == "FORCED_OPEN"

            @pytest.fixture
            def inventory(fake_clock):
                return CircuitBreaker("inventory", recovery_timeout=10)

            @pytest.mark.breaker_state("inventory", "OPEN")
            def test_a_breaker_from_a_fixture(inventory, fake_clock):
                assert str(inventory.state) == "OPEN"
                fake_clock.advance(10)
                assert str(inventory.state) == "HALF_OPEN"
                assert_transitions(inventory, ["OPEN", "HALF_OPEN"])

            @pytest.mark.breaker_state("nowhere", "OPEN")
            def test_unknown_name():
                pass

            @pytest.mark.breaker_state("payments", "AJAR")
            def test_unknown_state():
                pass

            @pytest.mark.breaker_state("payments")
            def test_missing_state():
                pass
        """,
    )
    result.assert_outcomes(passed=5, failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "*breaker_state('nowhere', 'OPEN'): no live circuit breaker is named 'nowhere'*",
            "*state must be one of 'CLOSED', 'OPEN', 'HALF_OPEN', 'FORCED_OPEN', 'DISABLED', "
            "got 'AJAR'*",
            "*breaker_state takes two strings, a breaker name and a state, got "
            "breaker_state('payments',)*",
        ]
    )


# -- async --------------------------------------------------------------------------------------

ASYNC_BODY = """
    async def scenario(fake_clock):
        breaker = CircuitBreaker("{name}", failure_threshold=1, recovery_timeout=5)

        @breaker
        async def fetch(ok):
            await asyncio.sleep(0)
            if not ok:
                raise TimeoutError("slow upstream")
            return "data"

        with pytest.raises(TimeoutError):
            await fetch(False)
        with pytest.raises(CircuitOpenError):
            await fetch(True)
        fake_clock.advance(5)
        assert await fetch(True) == "data"
        assert_transitions(breaker, ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"])
"""

ASYNC_HEADER = """
    import asyncio
    import pytest
    from shop import payments
    from resilience_kit import CircuitBreaker, CircuitOpenError
    from resilience_kit.testing import assert_transitions
"""


def test_pytest_asyncio_tests(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_asyncio=ASYNC_HEADER
        + ASYNC_BODY.format(name="aio")
        + """
    @pytest.mark.asyncio
    async def test_recovery(fake_clock, breakers):
        await scenario(fake_clock)

    @pytest.mark.asyncio
    @pytest.mark.breaker_state("payments", "OPEN")
    async def test_marker():
        assert str(payments.state) == "OPEN"
""",
    )
    result.assert_outcomes(passed=2)


def test_pytest_asyncio_auto_mode(run: Run) -> None:
    result = run(
        ini="asyncio_mode = auto\n",
        shop=APP,
        test_user_auto=ASYNC_HEADER
        + ASYNC_BODY.format(name="auto")
        + """
    async def test_recovery(fake_clock, breakers):
        await scenario(fake_clock)
""",
    )
    result.assert_outcomes(passed=1)


def test_anyio_tests(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_anyio=ASYNC_HEADER
        + ASYNC_BODY.format(name="anyio")
        + """
    @pytest.fixture
    def anyio_backend():
        return "asyncio"

    @pytest.mark.anyio
    async def test_recovery(fake_clock, breakers):
        await scenario(fake_clock)

    @pytest.mark.anyio
    @pytest.mark.breaker_state("payments", "HALF_OPEN")
    async def test_marker():
        assert str(payments.state) == "HALF_OPEN"
""",
    )
    result.assert_outcomes(passed=2)


# -- chaos --------------------------------------------------------------------------------------


def test_chaos_latency_on_the_fake_clock_makes_a_slow_call(run: Run) -> None:
    result = run(
        test_user_chaos="""
            from resilience_kit import CircuitBreaker, chaos
            from resilience_kit.testing import assert_transitions

            def test_slow_dependency(fake_clock):
                breaker = CircuitBreaker(
                    "chaos-slow", failure_threshold=1, slow_call_threshold=2.0
                )

                @breaker
                @chaos.inject(latency=5.0, enabled=True)
                def lookup():
                    return "value"

                assert lookup() == "value"  # slow, not failed: the result still comes back
                assert fake_clock.monotonic() == 5.0
                assert_transitions(breaker, ["CLOSED", "OPEN"])
        """
    )
    result.assert_outcomes(passed=1)


# -- retries ------------------------------------------------------------------------------------

RETRY_TESTS = """
    from resilience_kit import retry

    def three_attempts():
        attempts = []

        @retry("internal_api", attempts=3, retry_on=(ConnectionError,))  # waits 2 s between
        def flaky():
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionError("try again")
            return "ok"

        assert flaky() == "ok"
        assert len(attempts) == 3

    def test_waits_on_the_fake_clock(fake_clock):
        three_attempts()
        assert fake_clock.monotonic() == {waited}

    def test_without_sleeping(fake_clock, no_retry_waits):
        three_attempts()
        assert fake_clock.monotonic() == 0.0
"""


def test_no_retry_waits_fixture(run: Run) -> None:
    run(test_user_retry=RETRY_TESTS.format(waited=4.0)).assert_outcomes(passed=2)


def test_the_ini_option_turns_waits_off_for_the_whole_run(run: Run) -> None:
    result = run(
        ini="resilience_kit_no_retry_waits = true\n",
        test_user_retry=RETRY_TESTS.format(waited=0.0),
    )
    result.assert_outcomes(passed=2)
