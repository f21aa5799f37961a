"""Retry-After: delay seconds and HTTP dates, honoured but capped by max_wait and deadline."""

from __future__ import annotations

import email.utils
import fractions

import pytest
import requests
from retry_support import Sleeps

from doubles import Flaky
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
        ("007", 7.0),
        ("99999999999999999999", 1e20),
        ("1" * 400, None),  # more than a float holds
        ("1.5", None),  # delay-seconds is 1*DIGIT: no fractions,
        ("1e3", None),  # no exponents,
        ("-3", None),  # no signs,
        ("+3", None),
        ("0x10", None),
        ("\u0661\u0662\u0660", None),  # no non-ASCII digits (Arabic-Indic 120),
        ("\uff11\uff12", None),  # (fullwidth 12)
        ("1_000", None),  # no underscores,
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_delay_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=0.0) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
    ],
)
def test_parse_every_http_date_form(value: str) -> None:
    when = 784111777.0  # 1994-11-06 08:49:37 UTC
    assert parse_retry_after(value, now=when - 30) == 30.0


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37",  # no zone
        "Sun, 06 Nov 1994 08:49:37 +0000",  # an RFC 5322 date, not an HTTP-date
        "Sun, 06 Nov 1994 08:49:37 gmt",  # HTTP-date is case-sensitive
        "06 Nov 1994 08:49:37 GMT",  # no day name
        "Sun, 6 Nov 1994 08:49:37 GMT",  # IMF-fixdate has a two-digit day
        "Sun, 31 Feb 1994 08:49:37 GMT",  # no such day
        "Sun, \u0660\u0666 Nov 1994 08:49:37 GMT",  # non-ASCII digits
    ],
)
def test_parse_rejects_what_is_not_an_http_date(value: str) -> None:
    assert parse_retry_after(value, now=0.0) is None


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


def test_the_header_name_matches_in_any_case_even_in_a_plain_dict() -> None:
    class Shaped(Exception):
        status = 503

        def __init__(self, headers: dict[object, object]) -> None:
            super().__init__()
            self.headers = headers

    assert retry_after_from_response(Shaped({"RETRY-AFTER": "7"}), 0.0) == 7.0
    assert retry_after_from_response(Shaped({b"Retry-after": b"8"}), 0.0) == 8.0
    assert retry_after_from_response(Shaped({"Retry-Later": "9"}), 0.0) is None


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


def test_retry_after_beyond_the_deadline_is_capped_to_a_last_attempt(sleeps: Sleeps) -> None:
    # The caller's budget wins over the server's request: the wait ends with 1% of the
    # deadline left, and that attempt is the last one.
    starts: list[float] = []

    def throttled() -> None:
        starts.append(sleeps.clock.monotonic())
        raise _throttled("25")

    fn = retry(EXTERNAL_API, sleep=sleeps.sleep, clock=sleeps.clock, deadline=12.0)(throttled)
    with pytest.raises(requests.HTTPError):
        fn()
    assert sleeps.recorded == [pytest.approx(11.88)]
    assert starts == [0.0, pytest.approx(11.88)]


def test_retry_after_beyond_max_wait_waits_max_wait_each_time(sleeps: Sleeps) -> None:
    # The server asks for an hour each time: the retries still run, max_wait apart.
    fn = retry(EXTERNAL_API, sleep=sleeps.sleep, clock=sleeps.clock)(
        Flaky(_throttled("3600"), _throttled("3600"), _throttled("3600"))
    )
    with pytest.raises(requests.HTTPError):
        fn()
    assert sleeps.recorded == [EXTERNAL_API.max_wait, EXTERNAL_API.max_wait]


def test_a_failing_retry_after_reader_falls_back_to_the_backoff(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(error: BaseException, now: float) -> float | None:
        raise RuntimeError("reader bug")

    policy = RetryPolicy(wait="fixed", min_wait=2.0, retry_after=broken)
    assert retry(policy, sleep=sleeps.sleep)(Flaky(OSError(), result=1))() == 1
    assert sleeps.recorded == [2.0]
    assert "retry_after of policy 'custom' failed with RuntimeError" in caplog.text


class Odd(float):
    def __float__(self) -> float:
        raise ValueError("not today")


@pytest.mark.parametrize(
    "answer",
    ["5", b"5", float("nan"), float("inf"), -1.0, -1, True, [5], object(), Odd(3.0), 10**400],
    ids=[
        "str",
        "bytes",
        "nan",
        "inf",
        "negative",
        "negative-int",
        "bool",
        "list",
        "object",
        "float-raises",
        "beyond-float",
    ],
)
def test_a_retry_after_answer_that_is_not_seconds_is_logged_and_ignored(
    answer: object, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    error = OSError("upstream 503")
    policy = RetryPolicy(
        wait="fixed",
        min_wait=2.0,
        retry_after=lambda error, now: answer,  # type: ignore[arg-type,return-value]
    )
    with pytest.raises(OSError, match="upstream 503") as caught:
        retry(policy, sleep=sleeps.sleep)(Flaky(error, error, error))()
    assert caught.value is error  # the caller's error, not a TypeError of the hook's answer
    assert sleeps.recorded == [2.0, 2.0]
    assert "retry_after of policy 'custom' returned" in caplog.text


@pytest.mark.parametrize("answer", [3, 3.0, 0, fractions.Fraction(7, 2)], ids=repr)
def test_any_finite_non_negative_real_is_a_delay(answer: float, sleeps: Sleeps) -> None:
    policy = RetryPolicy(wait="fixed", min_wait=0.0, retry_after=lambda error, now: answer)
    assert retry(policy, sleep=sleeps.sleep)(Flaky(OSError(), result=1))() == 1
    assert sleeps.recorded == [float(answer)]
