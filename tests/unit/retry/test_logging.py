"""The log record before each wait: what it says, what it never says, and that it cannot break."""

from __future__ import annotations

import logging
import pickle

import pytest
import sqlalchemy
import sqlalchemy.exc
from retry_support import Sleeps

from doubles import Flaky
from resilience_kit import RetryPolicy, retry
from resilience_kit._retry import log as retry_log

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


def test_sqlalchemy_statements_and_parameters_never_reach_the_log(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLAlchemy's str() of a failed statement ends with "[SQL: ...]" and "[parameters: ...]":
    # the call's own arguments.
    engine = sqlalchemy.create_engine("sqlite://")

    @retry("database", sleep=sleeps.sleep, attempts=2, log_level=logging.INFO)
    def insert(email: str, password: str) -> None:
        with engine.begin() as connection:
            connection.execute(
                sqlalchemy.text("insert into missing (email, pw) values (:email, :pw)"),
                {"email": email, "pw": password},
            )

    caplog.set_level(logging.INFO, logger="resilience_kit.retry")
    with pytest.raises(sqlalchemy.exc.OperationalError):
        insert("bob@example.com", "CALLERS-PASSWORD")
    engine.dispose()
    text = caplog.text
    assert "CALLERS-PASSWORD" not in text
    assert "bob@example.com" not in text
    assert "insert into" not in text
    (record,) = caplog.records
    assert record.getMessage() == (
        "retry policy 'database': attempt 1 of 2 failed with OperationalError: "
        "(sqlite3.OperationalError) no such table: missing; retrying in 2.000s"
    )


def test_parameter_blocks_are_dropped_from_any_message(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    # The same blocks quoted by another error's message (no .orig to read instead).
    wrapped = ConnectionError(
        "upstream said: (psycopg.OperationalError) server closed the connection\n"
        "[SQL: SELECT * FROM users WHERE email = %(email)s]\n"
        "[parameters: {'email': 'bob@example.com'}]"
    )
    caplog.set_level(logging.INFO, logger="resilience_kit.retry")
    retry(POLICY, sleep=sleeps.sleep)(Flaky(wrapped, result=1))()
    assert "bob@example.com" not in caplog.text
    assert "server closed the connection; retrying" in caplog.text


def _secret_error() -> ConnectionError:
    return ConnectionError("could not connect to postgresql://app:TOP-SECRET@db/prod")


@pytest.mark.parametrize("hook", ["retry_if", "retry_after"])
def test_a_failing_hook_is_logged_without_the_callers_error_or_a_traceback(
    hook: str, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> bool:
        raise RuntimeError("hook bug with token=HOOK-SECRET")

    policy = POLICY.replace(retry_on=(ConnectionError,), **{hook: broken})
    if hook == "retry_if":
        policy = policy.replace(retry_on=())
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConnectionError):
        retry(policy, sleep=sleeps.sleep)(Flaky(*[_secret_error()] * 3))()
    failures = [r for r in caplog.records if f"{hook} of policy 'billing' failed" in r.getMessage()]
    assert failures
    for record in failures:
        assert record.exc_info is None
        assert record.levelno == logging.ERROR
        message = record.getMessage()
        assert "RuntimeError" in message
        assert "test_logging.py:" in message  # where the hook raised
        assert "token=***" in message
    assert "TOP-SECRET" not in caplog.text
    assert "HOOK-SECRET" not in caplog.text


class _RedactSpy:
    """Counts calls of the redaction the retry log uses, and of the error's own ``str()``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.redactions = 0
        real = retry_log.redact

        def spy(text: str, *, max_length: int | None = None) -> str:
            self.redactions += 1
            return real(text, max_length=max_length)

        monkeypatch.setattr(retry_log, "redact", spy)


class _CountedError(ConnectionError):
    """An error whose message counts how often it is read."""

    reads = 0

    def __str__(self) -> str:
        type(self).reads += 1
        return "connect failed: password=hunter2"


def _keep_records(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, level: int
) -> list[logging.LogRecord]:
    """Give the retry logger one handler that keeps records without formatting them.

    Called in the test's body: pytest attaches its own handlers, which format every record, to
    the root logger and to every non-propagating logger when the test's call starts.
    """
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    logger = logging.getLogger("resilience_kit.retry")
    monkeypatch.setattr(logger, "handlers", [Keep()])
    monkeypatch.setattr(logger, "propagate", False)
    caplog.set_level(level, logger=logger.name)  # restored after the test
    return kept


def test_nothing_is_read_or_redacted_when_the_logger_is_disabled_for_the_level(
    sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    kept = _keep_records(monkeypatch, caplog, logging.WARNING)  # POLICY logs at INFO
    spy = _RedactSpy(monkeypatch)
    _CountedError.reads = 0
    fn = retry(POLICY, sleep=sleeps.sleep)(Flaky(_CountedError(), _CountedError(), result=1))
    assert fn() == 1
    assert sleeps.recorded == [1.5, 1.5]  # both waits happened, neither was logged
    assert kept == []
    assert (_CountedError.reads, spy.redactions) == (0, 0)


def test_a_record_no_handler_formats_is_never_redacted(
    sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    kept = _keep_records(monkeypatch, caplog, logging.INFO)
    spy = _RedactSpy(monkeypatch)
    fn = retry(POLICY, sleep=sleeps.sleep)(Flaky(_CountedError(), result=1))
    assert fn() == 1
    (record,) = kept
    assert spy.redactions == 0
    expected = (
        "retry policy 'billing': attempt 1 of 3 failed with _CountedError: connect failed: "
        "password=***; retrying in 1.500s"
    )
    # Formatting redacts, once however many handlers format the record.
    assert record.getMessage() == expected
    assert record.getMessage() == expected
    assert spy.redactions == 1


def test_a_records_arguments_never_carry_the_unredacted_message(
    sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Handlers and integrations that read record.args (repr them, pickle the record to another
    # process) see the redacted text, not the raw one.
    kept = _keep_records(monkeypatch, caplog, logging.INFO)
    retry(POLICY, sleep=sleeps.sleep)(Flaky(_CountedError(), result=1))()
    (record,) = kept
    assert "hunter2" not in repr(record.args)
    assert "'connect failed: password=***'" in repr(record.args)
    pickled = pickle.dumps(record)
    assert b"hunter2" not in pickled
    copy = pickle.loads(pickled)  # noqa: S301 - our own bytes
    assert "password=***" in copy.getMessage()
    assert all(type(arg) in (str, int, float) for arg in copy.args)
