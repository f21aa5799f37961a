"""Retry-After: delay seconds and HTTP dates, honoured but capped by max_wait and deadline."""

from __future__ import annotations

import email.utils

import pytest
import requests
from retry_support import Flaky, Sleeps

from resilience_kit import EXTERNAL_API, RetryPolicy, retry
from resilience_kit.retry import parse_retry_after, retry_after_from_response


def _throttled(retry_after: str, status: int = 429) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"{status} Too Many Requests", response=response)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-3", None),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_delay_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=0.0) == expected


def test_parse_http_dates_against_the_given_now() -> None:
    now = 1_700_000_000.0
    in_90s = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(in_90s, now=now) == pytest.approx(90.0)
    in_the_past = email.utils.formatdate(now - 90, usegmt=True)
    assert parse_retry_after(in_the_past, now=now) == 0.0
    assert parse_retry_after("Wed, 32 Foo 2015 07:28:00 GMT", now=now) is None


def test_headers_are_found_on_requests_httpx_and_aiohttp_shapes() -> None:
    assert retry_after_from_response(_throttled("12"), 0.0) == 12.0

    class AiohttpShaped(Exception):
        status = 503

        def __init__(self) -> None:
            super().__init__()
            self.headers = {"retry-after": "3"}

    assert retry_after_from_response(AiohttpShaped(), 0.0) == 3.0
    assert retry_after_from_response(ValueError(), 0.0) is None


def test_retry_after_seconds_lengthen_the_wait(sleeps: Sleeps) -> None:
    fn = retry(EXTERNAL_API, sleep=sleeps.sleep, clock=sleeps.clock)(
        Flaky(_throttled("20"), result="ok")
    )
    assert fn() == "ok"
    assert sleeps.recorded == [20.0]


def test_retry_after_never_shortens_the_backoff(sleeps: Sleeps) -> None:
    fn = retry(EXTERNAL_API, sleep=sleeps.sleep, clock=sleeps.clock, jitter=0.0)(
        Flaky(_throttled("1"), result="ok")
    )
    assert fn() == "ok"
    assert sleeps.recorded == [4.0]


def test_retry_after_is_capped_by_max_wait(sleeps: Sleeps) -> None:
    fn = retry(EXTERNAL_API, sleep=sleeps.sleep, clock=sleeps.clock)(
        Flaky(_throttled("3600"), result="ok")
    )
    assert fn() == "ok"
    assert sleeps.recorded == [EXTERNAL_API.max_wait]


def test_retry_after_http_date_uses_the_clocks_wall_time(sleeps: Sleeps) -> None:
    when = email.utils.formatdate(sleeps.clock.wall() + 25, usegmt=True)
    fn = retry(EXTERNAL_API, sleep=sleeps.sleep, clock=sleeps.clock)(
        Flaky(_throttled(when, status=503), result="ok")
    )
    assert fn() == "ok"
    assert sleeps.recorded == [pytest.approx(25.0)]


def test_retry_after_is_capped_by_the_deadline(sleeps: Sleeps) -> None:
    fn = retry(EXTERNAL_API, sleep=sleeps.sleep, clock=sleeps.clock, deadline=12.0)(
        Flaky(_throttled("25"), result="ok")
    )
    assert fn() == "ok"
    assert sleeps.recorded == [12.0]


def test_a_failing_retry_after_reader_falls_back_to_the_backoff(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(error: BaseException, now: float) -> float | None:
        raise RuntimeError("reader bug")

    policy = RetryPolicy(wait="fixed", min_wait=2.0, retry_after=broken)
    assert retry(policy, sleep=sleeps.sleep)(Flaky(OSError(), result=1))() == 1
    assert sleeps.recorded == [2.0]
    assert "retry_after of policy 'custom' failed" in caplog.text
