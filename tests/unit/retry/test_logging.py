"""The log record before each wait: what it says, what it never says, and that it cannot break."""

from __future__ import annotations

import logging

import pytest
from retry_support import Flaky, Sleeps

from resilience_kit import RetryPolicy, retry
from resilience_kit._redact import redact, redact_url, truncate

POLICY = RetryPolicy(name="billing", attempts=3, wait="fixed", min_wait=1.5, log_level=logging.INFO)


def test_each_wait_is_logged_with_policy_attempt_wait_and_error(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="resilience_kit.retry")
    fn = retry(POLICY, sleep=sleeps.sleep)(
        Flaky(TimeoutError("upstream slow"), OSError("reset"), result=1)
    )
    assert fn() == 1
    records = [r for r in caplog.records if r.name == "resilience_kit.retry"]
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO]
    assert records[0].getMessage() == (
        "retry policy 'billing': attempt 1 of 3 failed with TimeoutError: upstream slow; "
        "retrying in 1.500s"
    )
    assert records[1].retry_attempt == 2  # type: ignore[attr-defined]
    assert records[1].retry_wait == 1.5  # type: ignore[attr-defined]
    assert records[1].error_type == "OSError"  # type: ignore[attr-defined]
    assert records[1].retry_policy == "billing"  # type: ignore[attr-defined]


def test_nothing_is_logged_below_the_policys_level(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="resilience_kit.retry")
    retry(POLICY, sleep=sleeps.sleep)(Flaky(OSError(), result=1))()
    assert caplog.records == []


def test_secrets_in_messages_are_redacted_and_arguments_never_logged(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    @retry(POLICY, sleep=sleeps.sleep)
    def connect(dsn: str, api_key: str) -> str:
        if len(caplog.records) == 0:
            raise ConnectionError(
                f"could not connect to {dsn}; headers: Authorization: Bearer tok-123"
            )
        return "ok"

    assert connect("postgresql://app:hunter2-pw@db/prod", api_key="argument-secret-42") == "ok"
    text = caplog.text
    assert "hunter2-pw" not in text
    assert "tok-123" not in text
    assert "argument-secret-42" not in text
    assert "postgresql://app:***@db/prod" in text


def test_long_messages_are_truncated(sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    retry(POLICY, sleep=sleeps.sleep)(Flaky(OSError("x" * 5000), result=1))()
    (record,) = caplog.records
    assert len(record.getMessage()) < 400
    assert "\u2026" in record.getMessage()


def test_returning_the_default_is_logged(sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    retry("redis", sleep=sleeps.sleep)(Flaky(*[ConnectionError("refused")] * 3))()
    assert (
        "retry policy 'redis' exhausted after 3 attempts on ConnectionError: refused; "
        in caplog.text
    )


def test_a_broken_handler_or_message_never_breaks_the_call(sleeps: Sleeps) -> None:
    class Exploding(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler down")

        def handleError(self, record: logging.LogRecord) -> None:
            raise RuntimeError("and its error handling too")

    class Unprintable(OSError):
        def __str__(self) -> str:
            raise ValueError("no str")

    logger = logging.getLogger("resilience_kit.retry")
    handler = Exploding()
    logger.addHandler(handler)
    try:
        fn = retry(POLICY.replace(log_level=logging.CRITICAL), sleep=sleeps.sleep)(
            Flaky(Unprintable(), result="fine")
        )
        assert fn() == "fine"
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/prod", "postgresql://app:***@db:5432/prod"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://ghp_token@github.com/x", "https://***@github.com/x"),
        ("mysql://u:p@ss@host/db", "mysql://u:***@host/db"),
        ("postgresql://app:pa/ss@w0rd@db/prod?x=1", "postgresql://app:***@db/prod?x=1"),
        ("http://example.com/a@b", "http://example.com/a@b"),
        ("password=hunter2 user=bob", "password=*** user=bob"),
        ("DB_PASSWORD: 'hunter2'", "DB_PASSWORD: '***'"),
        ('{"api_key": "abc", "n": 1}', '{"api_key": "***", "n": 1}'),
        ("?apikey=abc&x=1", "?apikey=***&x=1"),
        ("access-key = AKIA1234", "access-key = ***"),
        ("Authorization: Bearer eyJhbGc.x.y", "Authorization: Bearer ***"),
        ("sent bearer abc.def to the server", "sent bearer *** to the server"),
        ("client_secret=xyz;token=t0k", "client_secret=***;token=***"),
        ("a=password=x", "a=password=***"),
        ("nothing secret here: 42", "nothing secret here: 42"),
    ],
)
def test_redact_examples(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_url_and_truncate() -> None:
    assert redact_url("postgresql+psycopg://postgres:pw@127.0.0.1/test") == (
        "postgresql+psycopg://postgres:***@127.0.0.1/test"
    )
    assert redact_url("sqlite:///file.db") == "sqlite:///file.db"
    assert truncate("abcdef", 4) == "abc\u2026"
    assert truncate("abc", 4) == "abc"
    assert truncate("abcdef", 1) == "a"
    # Redaction comes first, so the cut can never expose part of the secret.
    assert redact("password=" + "x" * 50, max_length=11) == "password=*\u2026"
