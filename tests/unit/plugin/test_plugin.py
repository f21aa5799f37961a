"""The pytest plugin, tested by running pytest on users' test files (pytester)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

Run = Callable[..., pytest.RunResult]  # the `run` fixture in conftest.py

APP = """
    import pytest
    from resilience_kit import CircuitBreaker

    payments = CircuitBreaker("payments", failure_threshold=2, recovery_timeout=30)

    @payments
    def charge(gateway, amount):
        return gateway(amount)

    def down(amount):
        raise ConnectionError("gateway down")

    def trip():
        # failure_threshold=2: two failed charges open payments.
        for _ in range(2):
            with pytest.raises(ConnectionError):
                charge(down, 1)
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
            from shop import charge, payments, trip
            from resilience_kit import CircuitOpenError
            from resilience_kit.testing import assert_transitions

            def ok(amount):
                return amount

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
            from shop import payments, trip
            from resilience_kit.testing import assert_transitions

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
            "test_user_transitions.py:14: AssertionError",
        ]
    )


def test_each_test_records_from_its_own_start(run: Run) -> None:
    result = run(
        shop=APP,
        test_user_fresh="""
            from shop import payments, trip
            from resilience_kit.testing import assert_transitions

            def test_opens_it():
                trip()
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
            from shop import charge, payments, trip
            from resilience_kit import CircuitBreaker, CircuitOpenError, ConfigurationError

            kept = []

            def test_one_opens_it_and_creates_breakers(breakers):
                trip()
                with pytest.raises(CircuitOpenError):
                    charge(lambda amount: amount, 1)
                temporary = CircuitBreaker("iso-temporary")
                kept.append(CircuitBreaker("iso-kept", failure_threshold=1))
                kept[0].force_open()
                assert breakers["payments"] is payments
                assert set(breakers) >= {"payments", "iso-temporary", "iso-kept"}

            def test_two_finds_them_closed_and_free_names_free(breakers):
                assert str(payments.state) == "CLOSED"
                assert charge(lambda amount: amount * 2, 21) == 42
                again = CircuitBreaker("iso-temporary")  # nobody held it: the name came back
                assert breakers["iso-temporary"] is again
                # The module still holds this one: it keeps its name, fresh again.
                assert breakers["iso-kept"] is kept[0]
                assert str(kept[0].state) == "CLOSED"
                assert kept[0].stats().total_rejected == 0
                with pytest.raises(ConfigurationError, match="iso-kept"):
                    CircuitBreaker("iso-kept")
        """,
    )
    result.assert_outcomes(passed=2)


def test_a_module_first_imported_inside_a_test_keeps_its_breaker(run: Run) -> None:
    """A lazily imported application module's breaker stays registered, on the real clock."""
    result = run(
        lazy_app="""
            from resilience_kit import CircuitBreaker

            search = CircuitBreaker("lazy-search", failure_threshold=1, recovery_timeout=30)
        """,
        test_user_lazy="""
            import time
            import pytest
            from resilience_kit import CircuitOpenError, breakers as live

            def test_1_imports_it_under_the_fake_clock(breakers, fake_clock):
                import lazy_app

                assert breakers["lazy-search"] is lazy_app.search
                with pytest.raises(ZeroDivisionError):
                    lazy_app.search.call(lambda: 1 / 0)
                fake_clock.advance(10)

            @pytest.mark.breaker_state("lazy-search", "open")
            def test_2_the_marker_finds_it():
                import lazy_app

                assert live()["lazy-search"] is lazy_app.search
                assert str(lazy_app.search.state) == "OPEN"

            def test_3_it_runs_on_real_time_again(fake_clock):
                import lazy_app

                lazy_app.search.force_open()
                lazy_app.search.reset()
                with pytest.raises(ZeroDivisionError):
                    lazy_app.search.call(lambda: 1 / 0)
                fake_clock.advance(12)  # its second fake clock: left with 18 s to go

            def test_4_what_was_left_runs_out_in_real_time():
                import lazy_app

                with pytest.raises(CircuitOpenError) as first:
                    lazy_app.search.call(lambda: "ok")
                time.sleep(0.01)
                with pytest.raises(CircuitOpenError) as second:
                    lazy_app.search.call(lambda: "ok")
                assert 17 < second.value.retry_after < first.value.retry_after < 18
        """,
    )
    result.assert_outcomes(passed=4)


def test_a_failed_test_gives_back_the_names_of_its_breakers(run: Run) -> None:
    """The failure's traceback keeps the test's locals alive; the names come back anyway.

    In a subprocess: an in-process run's hook recorder keeps every hook's arguments, among
    them the objects an assertion compared, which a user's run does not.
    """
    result = run(
        subprocess=True,
        shop=APP,
        test_user_failing="""
            import pytest
            from resilience_kit import CircuitBreaker, ConfigurationError
            import shop

            @pytest.fixture
            def orders_breaker():
                return CircuitBreaker("failing-fixture")

            def test_1_fails_holding_breakers(orders_breaker):
                local = CircuitBreaker("failing-orders")
                held = shop.payments  # a module's breaker, held by a local too
                assert local is held, "boom"

            def test_2_creates_the_same_names():
                CircuitBreaker("failing-orders")
                CircuitBreaker("failing-fixture")

            def test_3_the_module_breaker_kept_its_name():
                with pytest.raises(ConfigurationError, match="payments"):
                    CircuitBreaker("payments")

            @pytest.fixture
            def broken_setup():
                inner = CircuitBreaker("failing-setup")
                raise RuntimeError("setup failed")

            def test_4_errors_in_setup(broken_setup):
                pass

            def test_5_after_a_setup_error():
                CircuitBreaker("failing-setup")

            @pytest.mark.asyncio
            async def test_6_async_fails_holding_one():
                local = CircuitBreaker("failing-async")
                assert local is None

            def test_7_after_the_async_failure():
                CircuitBreaker("failing-async")
        """,
    )
    result.assert_outcomes(passed=4, failed=2, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "E       AssertionError: boom",
            "E       RuntimeError: setup failed",
            "FAILED test_user_failing.py::test_1_fails_holding_breakers - *",
            "FAILED test_user_failing.py::test_6_async_fails_holding_one - *",
        ]
    )
    assert "name must be unique" not in result.stdout.str()


def test_freeing_names_leaves_live_generators_running(run: Run) -> None:
    """A worker generator that caught the test's error is in its traceback; it must go on.

    Before Python 3.13, clearing a suspended generator's frame would finalise the generator.
    """
    result = run(
        subprocess=True,
        test_user_worker="""
            import pytest
            from resilience_kit import CircuitBreaker

            def runner():
                outcome = None
                while True:
                    job = yield outcome
                    try:
                        outcome = ("ok", job())
                    except Exception as error:
                        outcome = ("error", error)

            @pytest.fixture(scope="module")
            def jobs():
                worker = runner()
                next(worker)

                def submit(job):
                    kind, value = worker.send(job)
                    if kind == "error":
                        raise value
                    return value

                return submit

            def test_1_job_fails(jobs):
                breaker = CircuitBreaker("worker-job")
                jobs(lambda: 1 / 0)

            def test_2_the_worker_still_runs(jobs):
                assert jobs(lambda: 42) == 42
                CircuitBreaker("worker-job")
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED test_user_worker.py::test_1_job_fails - ZeroDivisionError*"]
    )


def test_the_report_of_a_failure_keeps_its_locals(run: Run) -> None:
    """Locals are dropped only after the failure is reported (--showlocals still shows them)."""
    result = run(
        "--showlocals",
        test_user_locals="""
            from resilience_kit import CircuitBreaker

            def test_fails():
                breaker = CircuitBreaker("shown-local")
                marker = "a local worth seeing"
                assert breaker.name == "elsewhere"

            def test_again():
                CircuitBreaker("shown-local")
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["breaker *= CircuitBreaker('shown-local'*", "marker *= 'a local*"])


def test_a_breaker_in_a_reference_cycle_gives_its_name_back(run: Run) -> None:
    result = run(
        test_user_cycle="""
            from resilience_kit import CircuitBreaker

            class Watcher:
                def on_state_change(self, breaker, old, new):
                    pass

            def test_1():
                watcher = Watcher()
                watcher.breaker = CircuitBreaker("cyclic", listeners=[watcher])  # a cycle

            def test_2():
                CircuitBreaker("cyclic")
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
            from shop import payments, trip
            from resilience_kit import CircuitBreaker

            kept = []

            def test_one():
                trip()
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

            @pytest.mark.breaker_state("payments", "forced_open")  # any case
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
            "@pytest.mark.breaker_state('payments', 'AJAR'): cannot put breaker 'payments' in "
            "'AJAR', which is not a circuit breaker state; use one of CLOSED, OPEN, HALF_OPEN, "
            "FORCED_OPEN, DISABLED (in any case)",
            "*breaker_state takes two strings, a breaker name and a state, got "
            "breaker_state('payments',)*",
        ]
    )
    assert "pytest_plugin.py" not in result.stdout.str()  # no traceback of the plugin's own


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


def test_a_bare_chaos_enable_does_not_leak_into_the_next_test(run: Run) -> None:
    result = run(
        test_user_chaos_switch="""
            import pytest
            from resilience_kit import chaos

            failing = chaos.inject(fault=ConnectionError("injected"), rate=1.0)

            @failing
            def lookup():
                return "value"

            def test_1_switches_it_on_and_forgets():
                chaos.enable()
                chaos.enable()
                with pytest.raises(ConnectionError):
                    lookup()

            def test_2_finds_it_off():
                assert not chaos.is_enabled()
                assert lookup() == "value"

            @pytest.fixture(scope="module")
            def chaos_on():
                with chaos.enable():
                    yield

            def test_3_a_module_fixture_holds_it_on(chaos_on):
                chaos.disable()
                assert not chaos.is_enabled()

            def test_4_still_on_for_the_next_test_of_the_fixture(chaos_on):
                assert chaos.is_enabled()
        """,
    )
    result.assert_outcomes(passed=4)


def test_chaos_imported_inside_a_test_is_switched_back_too(run: Run) -> None:
    """In a fresh interpreter, where nothing imported chaos before the test did."""
    result = run(
        subprocess=True,
        test_user_chaos_lazy="""
            import sys

            def test_1_imports_and_enables():
                assert "resilience_kit.chaos" not in sys.modules
                from resilience_kit import chaos

                chaos.enable()

            def test_2_finds_it_off():
                from resilience_kit import chaos

                assert not chaos.is_enabled()
        """,
    )
    result.assert_outcomes(passed=2)


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


def test_a_retry_decorated_during_a_test_sleeps_for_real_afterwards(run: Run) -> None:
    """It captured the fixture's FakeClock, which goes on in real time after the test."""
    result = run(
        lazy_client="""
            from resilience_kit import retry

            attempts = []

            @retry("internal_api", attempts=2, wait="fixed", min_wait=0.05, deadline=60,
                   retry_on=(ConnectionError,))
            def fetch():
                attempts.append(1)
                if len(attempts) % 2:
                    raise ConnectionError("try again")
                return "ok"
        """,
        test_user_lazy_retry="""
            import time

            def test_1_decorated_under_the_fake_clock(fake_clock):
                import lazy_client

                assert lazy_client.fetch() == "ok"
                assert fake_clock.monotonic() == 0.05

            def test_2_really_waits():
                import lazy_client

                start = time.monotonic()
                assert lazy_client.fetch() == "ok"
                assert time.monotonic() - start >= 0.05
        """,
    )
    result.assert_outcomes(passed=2)


def test_pytest_start_does_not_load_the_retry_layer(run: Run) -> None:
    result = run(
        subprocess=True,
        test_user_imports="""
            import sys

            def test_what_the_plugin_loaded(request):
                assert request.config.pluginmanager.has_plugin("resilience_kit")
                loaded = {"tenacity", "resilience_kit._retry", "resilience_kit.testing",
                          "resilience_kit.chaos", "resilience_kit.composition"}
                assert loaded.isdisjoint(sys.modules), loaded & set(sys.modules)
        """,
    )
    result.assert_outcomes(passed=1)
