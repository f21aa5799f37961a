"""Each preset's schedule of waits, recorded through an injected sleep (nothing really sleeps)."""

from __future__ import annotations

import pytest
from retry_support import Sleeps

from doubles import AsyncFlaky, Flaky
from resilience_kit import (
    BEST_EFFORT,
    DATABASE,
    EXTERNAL_API,
    INTERNAL_API,
    REDIS,
    RetryPolicy,
    retry,
)


class ServerError(Exception):
    """Shaped like requests.HTTPError: the response carries the status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"{status} from upstream")
        self.response = type("Response", (), {"status_code": status, "headers": {}})()


def _run(policy: RetryPolicy, error: Exception, sleeps: Sleeps) -> object:
    flaky = Flaky(*[error] * policy.attempts)
    fn = retry(policy, sleep=sleeps.sleep, clock=sleeps.clock)(flaky)
    try:
        return fn()
    except Exception as raised:
        return raised


def test_database_waits_2s_then_2s_and_reraises(sleeps: Sleeps) -> None:
    error = ConnectionError("server closed the connection")
    assert _run(DATABASE, error, sleeps) is error
    # tenacity's wait_exponential: max(min_wait, multiplier * 2 ** (n - 1)) -> 2, 2.
    assert sleeps.recorded == [2.0, 2.0]


def test_database_schedule_grows_to_its_cap_with_more_attempts(sleeps: Sleeps) -> None:
    _run(DATABASE.replace(attempts=7), TimeoutError(), sleeps)
    assert sleeps.recorded == [2.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_redis_waits_1s_then_2s_and_returns_none(sleeps: Sleeps) -> None:
    assert _run(REDIS, ConnectionError("refused"), sleeps) is None
    assert sleeps.recorded == [1.0, 2.0]


def test_external_api_waits_4_then_8_seconds_plus_jitter(sleeps: Sleeps) -> None:
    error = ServerError(503)
    assert _run(EXTERNAL_API, error, sleeps) is error
    first, second = sleeps.recorded
    assert 4.0 <= first <= 5.0
    assert 8.0 <= second <= 9.0


def test_internal_api_waits_a_fixed_2s(sleeps: Sleeps) -> None:
    error = ServerError(502)
    assert _run(INTERNAL_API, error, sleeps) is error
    assert sleeps.recorded == [2.0, 2.0]


def test_best_effort_tries_twice_briefly_and_returns_none(sleeps: Sleeps) -> None:
    assert _run(BEST_EFFORT, RuntimeError("tts failed"), sleeps) is None
    assert sleeps.recorded == [BEST_EFFORT.min_wait]


def test_random_exponential_stays_within_its_bounds(sleeps: Sleeps) -> None:
    policy = RetryPolicy(wait="random_exponential", attempts=6, min_wait=0.5, max_wait=3.0)
    _run(policy, ValueError(), sleeps)
    assert len(sleeps.recorded) == 5
    assert all(0.5 <= wait <= 3.0 for wait in sleeps.recorded)


async def test_async_functions_follow_the_same_schedule(sleeps: Sleeps) -> None:
    flaky = AsyncFlaky(TimeoutError(), TimeoutError(), result="row")
    fn = retry(DATABASE, sleep=sleeps.async_sleep, clock=sleeps.clock)(flaky.run)
    assert await fn() == "row"
    assert sleeps.recorded == [2.0, 2.0]
    assert flaky.calls == 3


async def test_a_plain_sleep_function_also_serves_async_functions(sleeps: Sleeps) -> None:
    flaky = AsyncFlaky(TimeoutError(), result="row")
    fn = retry(DATABASE, sleep=sleeps.sleep)(flaky.run)
    assert await fn() == "row"
    assert sleeps.recorded == [2.0]


def test_a_fake_clock_installed_for_the_test_absorbs_the_waits() -> None:
    from resilience_kit.testing import FakeClock, use_clock

    clock = FakeClock()
    with use_clock(clock):
        fn = retry("database")(Flaky(TimeoutError(), TimeoutError(), result=1))
    assert fn() == 1
    assert clock.monotonic() == 4.0


def test_a_coroutine_sleep_is_refused_for_a_plain_def() -> None:
    async def sleep(seconds: float) -> None: ...

    from resilience_kit import ConfigurationError

    with pytest.raises(ConfigurationError, match="sleep must be a plain function"):
        retry(DATABASE, sleep=sleep)(Flaky())
