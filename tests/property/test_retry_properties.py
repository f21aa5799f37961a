"""Properties of retry: schedules stay within max_wait and the deadline; env parsing; redaction."""

from __future__ import annotations

import json
import math
import string
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from resilience_kit import ConfigurationError, RetryPolicy, retry
from resilience_kit._redact import redact
from resilience_kit.testing import FakeClock

waits = st.floats(min_value=0, max_value=120, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    min_wait = draw(waits)
    max_wait = draw(st.floats(min_value=min_wait, max_value=min_wait + 120))
    return RetryPolicy(
        attempts=draw(st.integers(1, 12)),
        wait=draw(st.sampled_from(["exponential", "fixed", "random_exponential"])),
        min_wait=min_wait,
        max_wait=max_wait,
        multiplier=draw(st.floats(min_value=0.01, max_value=50)),
        jitter=draw(st.floats(min_value=0, max_value=10)),
        deadline=draw(st.none() | st.floats(min_value=0.01, max_value=500)),
        retry_after=(lambda error, now: getattr(error, "hint", None)),
    )


class Hinted(OSError):
    def __init__(self, hint: float | None) -> None:
        super().__init__("throttled")
        self.hint = hint


@given(
    policy=policies(),
    attempt_time=st.floats(min_value=0, max_value=30),
    hints=st.lists(st.none() | st.floats(min_value=0, max_value=1e6), min_size=12, max_size=12),
)
def test_schedule_never_exceeds_max_wait_nor_the_deadline(
    policy: RetryPolicy, attempt_time: float, hints: list[float | None]
) -> None:
    clock = FakeClock()
    slept: list[float] = []
    calls = 0

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    def always_fails() -> None:
        nonlocal calls
        calls += 1
        clock.advance(attempt_time)
        raise Hinted(hints[calls - 1])

    with pytest.raises(Hinted):
        retry(policy, sleep=sleep, clock=clock)(always_fails)()
    assert calls <= policy.attempts
    assert len(slept) == calls - 1
    assert all(0 <= s <= policy.max_wait for s in slept)
    if policy.deadline is not None:
        # Every attempt starts with at least 1% of the deadline left: no wait ends later.
        last_start = policy.deadline * 0.99 + 1e-9
        elapsed = 0.0
        for index, wait in enumerate(slept):
            elapsed += attempt_time
            assert elapsed + wait <= last_start, (index, slept)
            elapsed += wait
        # The retries stop only for a reason: attempts used up, or too little time left.
        if calls < policy.attempts:
            assert clock.monotonic() >= policy.deadline * 0.99 - 1e-6
    else:
        assert calls == policy.attempts


@given(st.integers(min_value=1, max_value=10**9))
def test_attempts_round_trip_through_the_environment(attempts: int) -> None:
    environ = {"P_ATTEMPTS": f" {attempts} "}
    assert RetryPolicy.from_env("P", environ=environ).attempts == attempts


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_waits_round_trip_through_the_environment(value: float) -> None:
    environ = {"P_MIN_WAIT": repr(value), "P_MAX_WAIT": repr(value)}
    policy = RetryPolicy.from_env("P", environ=environ)
    assert (policy.min_wait, policy.max_wait) == (value, value)


@given(st.text(max_size=20))
def test_bad_attempts_text_is_rejected_naming_variable_and_value(raw: str) -> None:
    stripped = raw.strip()
    try:
        valid = int(stripped, 10) >= 1
    except ValueError:
        valid = False
    assume(stripped and not valid)
    with pytest.raises(ConfigurationError) as caught:
        RetryPolicy.from_env("P", environ={"P_ATTEMPTS": raw})
    assert caught.value.parameter == "P_ATTEMPTS"
    assert f"got {stripped!r}" in str(caught.value)


@given(st.text(max_size=20))
def test_float_fields_accept_exactly_finite_non_negative_numbers(raw: str) -> None:
    stripped = raw.strip()
    try:
        number: float | None = float(stripped)
    except ValueError:
        number = None
    environ = {"P_JITTER": raw}
    if not stripped:
        assert RetryPolicy.from_env("P", environ=environ).jitter == 0.0
    elif number is not None and math.isfinite(number) and number >= 0:
        assert RetryPolicy.from_env("P", environ=environ).jitter == number
    else:
        with pytest.raises(ConfigurationError, match=r"^P_JITTER must be"):
            RetryPolicy.from_env("P", environ=environ)


# Secrets as they appear in URLs, headers and config: no whitespace or separators.
secrets = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.~+/=!$%()",
    min_size=6,
    max_size=40,
)
# Secrets as they appear in quoted values: anything printable, quotes and backslashes included.
free_secrets = st.text(
    alphabet=string.ascii_letters + string.digits + string.punctuation + " ",
    min_size=6,
    max_size=40,
)
noise = st.text(alphabet=string.printable, max_size=40)
# Every form redact() supports, with the secret as {s}.
TEMPLATES = [
    "could not connect to postgresql://app:{s}@db:5432/prod",
    "redis://:{s}@cache:6379/0 refused",
    "password={s}",
    "DB_PASSWORD: {s}",
    '{{"api_key": "{s}", "retries": 3}}',
    "{{'secret': '{s}'}}",
    "Authorization: Bearer {s}",
    "header authorization=Basic {s}",
    "GET /v1/items?apikey={s}&page=2",
    "token = {s}",
    "sending bearer {s}",
    "ACCESS_KEY={s};region=eu",
    "GET /geocode/json?address=x&key={s}&page=2",
    "GET /c/f?sv=2022&sig={s}&se=2025",
    "GET /o?X-Amz-Credential={s}&X-Amz-Date=20250101",
    "GET /o?X-Amz-Signature={s}",
    "Cookie: sessionid={s}; csrftoken=abc",
    "Set-Cookie: theme=dark; id={s}; Path=/",
    "ftp login failed: user=bob pass={s}",
    "{{'email': 'a@b.c', 'pw': '{s}'}}",
    "private_key: {s}",
    "client_secret={s}&refresh_token={s}",
    "access_token: {s}",
    "x-api-key: {s}",
    "jwt={s}",
]
# Forms whose value is quoted and escaped: built from the secret by an encoder.
QUOTED = [
    lambda s: "body: " + json.dumps({"user": "bob", "password": s}),
    lambda s: "body: " + json.dumps(json.dumps({"password": s, "n": 1})),  # JSON in a string
    lambda s: "kwargs: " + repr({"email": "a@b.c", "pw": s}),
    lambda s: "config: client_secret=" + json.dumps(s),
    lambda s: f"private_key: -----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----",
]


@given(
    secret=secrets,
    template=st.sampled_from(TEMPLATES),
    before=noise,
    after=noise,
    limit=st.none() | st.integers(min_value=1, max_value=300),
)
def test_a_secret_never_survives_redaction(
    secret: str, template: str, before: str, after: str, limit: int | None
) -> None:
    body = template.format(s=secret)
    assume(secret not in template.format(s="") + before + after)
    # Separate the noise from the body as logs do; the secret itself ends at a separator.
    text = f"{before} {body} {after}"
    assert secret not in redact(text, max_length=limit)


@given(
    secret=free_secrets,
    encode=st.sampled_from(QUOTED),
    before=noise,
    after=noise,
    limit=st.none() | st.integers(min_value=1, max_value=300),
)
def test_a_quoted_secret_never_survives_redaction(
    secret: str,
    encode: Callable[[str], str],
    before: str,
    after: str,
    limit: int | None,
) -> None:
    body = encode(secret)
    assume(secret.strip() and secret not in encode("") + before + after)
    text = f"{before} {body} {after}"
    output = redact(text, max_length=limit)
    assert secret not in output
    # Nor any stretch of it longer than what the rest of the text could explain.
    rest = encode("") + before + after
    for size in range(8, len(secret) + 1):
        for start in range(len(secret) - size + 1):
            piece = secret[start : start + size]
            assert piece in rest or piece not in output, (piece, output)


@given(
    secret=secrets,
    template=st.sampled_from(TEMPLATES),
    offset=st.integers(min_value=0, max_value=400),
    limit=st.integers(min_value=20, max_value=300),
)
def test_a_secret_cut_by_the_length_limit_leaks_no_part(
    secret: str, template: str, offset: int, limit: int
) -> None:
    # The cut before redaction and the truncation after it may fall anywhere in the secret.
    body = template.format(s=secret)
    padding = "x" * offset
    output = redact(f"{padding} {body}", max_length=limit)
    rest = padding + template.format(s="")
    for size in range(4, len(secret) + 1):
        for start in range(len(secret) - size + 1):
            piece = secret[start : start + size]
            assert piece in rest or piece not in output, (piece, output)


@given(st.text(max_size=2000), st.integers(min_value=1, max_value=500))
def test_redaction_output_respects_the_length_limit(text: str, limit: int) -> None:
    assert len(redact(text, max_length=limit)) <= limit
