"""RetryPolicy.from_env and the REDIS preset's environment overrides."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from doubles import Flaky
from resilience_kit import DATABASE, REDIS, ConfigurationError, RetryPolicy, resilient, retry
from resilience_kit.retry import retryable_http_response, transient_redis_error
from resilience_kit.testing import no_waits


def test_every_field_can_come_from_the_environment() -> None:
    environ = {
        "APP_RETRY_ATTEMPTS": "5",
        "APP_RETRY_WAIT": "Fixed",
        "APP_RETRY_MIN_WAIT": "0.25",
        "APP_RETRY_MAX_WAIT": "4",
        "APP_RETRY_MULTIPLIER": "2",
        "APP_RETRY_JITTER": "0.1",
        "APP_RETRY_DEADLINE": "30",
        "APP_RETRY_RETRY_ON": "builtins.ConnectionError, builtins:TimeoutError",
        "APP_RETRY_GIVE_UP_ON": "builtins.ConnectionRefusedError",
        "APP_RETRY_ON_EXHAUSTED": "return_default",
        "APP_RETRY_DEFAULT": json.dumps({"cached": True}),
        "APP_RETRY_LOG_LEVEL": "info",
        "APP_RETRY_NAME": "app",
        "APP_RETRY_RETRY_IF": "resilience_kit.retry.transient_redis_error",
        "APP_RETRY_RETRY_AFTER": "resilience_kit.retry.retry_after_from_response",
        "APP_RETRY_RETRY_IF_RESULT": "resilience_kit.retry.retryable_http_response",
        "APP_RETRY_ON_RETRY": "logging.debug",
    }
    policy = RetryPolicy.from_env("APP_RETRY", environ=environ)
    assert (policy.attempts, policy.wait, policy.min_wait, policy.max_wait) == (
        5,
        "fixed",
        0.25,
        4.0,
    )
    assert (policy.multiplier, policy.jitter, policy.deadline) == (2.0, 0.1, 30.0)
    assert policy.retry_on == (ConnectionError, TimeoutError)
    assert policy.give_up_on[0] is ConnectionRefusedError
    assert (policy.on_exhausted, policy.default) == ("return_default", {"cached": True})
    assert (policy.log_level, policy.name) == (logging.INFO, "app")
    assert policy.retry_if is transient_redis_error
    assert policy.retry_after is not None
    assert policy.retry_if_result is retryable_http_response
    assert policy.on_retry is logging.debug


def test_unset_and_blank_variables_keep_the_base() -> None:
    policy = RetryPolicy.from_env(
        "DB_RETRY_", base=DATABASE, environ={"DB_RETRY_ATTEMPTS": "  ", "DB_RETRY_MAX_WAIT": "20"}
    )
    assert policy == DATABASE.replace(max_wait=20.0)


def test_deadline_none_clears_a_base_deadline() -> None:
    base = RetryPolicy(deadline=5.0)
    assert RetryPolicy.from_env("X", base=base, environ={"X_DEADLINE": "None"}).deadline is None


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVTEST_ATTEMPTS", "9")
    assert RetryPolicy.from_env("ENVTEST").attempts == 9


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("R_ATTEMPTS", "three", "R_ATTEMPTS must be an int >= 1, got 'three'"),
        ("R_ATTEMPTS", "0", "R_ATTEMPTS must be an int >= 1, got '0'"),
        ("R_MIN_WAIT", "-1", "R_MIN_WAIT must be a finite number >= 0, got '-1'"),
        ("R_MAX_WAIT", "inf", "R_MAX_WAIT must be a finite number >= 0, got 'inf'"),
        ("R_MULTIPLIER", "0", "R_MULTIPLIER must be a finite number > 0, got '0'"),
        ("R_DEADLINE", "soon", "R_DEADLINE must be a finite number > 0 or 'none', got 'soon'"),
        ("R_WAIT", "linear", "R_WAIT must be one of 'exponential', 'fixed', 'random_exponential'"),
        ("R_ON_EXHAUSTED", "ignore", "R_ON_EXHAUSTED must be one of 'raise', 'return_default'"),
        ("R_LOG_LEVEL", "LOUD", "R_LOG_LEVEL must be a logging level name"),
        ("R_DEFAULT", "{oops", "R_DEFAULT must be a JSON value, got '{oops'"),
        ("R_RETRY_ON", "builtins.len", "R_RETRY_ON must be import paths of exception classes"),
        ("R_RETRY_ON", "no.such.Module", "R_RETRY_ON must be an importable 'package.module.Name'"),
        ("R_RETRY_ON", "Nothing", "R_RETRY_ON must be an import path such as"),
        ("R_RETRY_IF", "builtins.no_such_name", "R_RETRY_IF must be an importable"),
        ("R_RETRY_AFTER", "math.pi", "R_RETRY_AFTER must be the import path of a callable"),
    ],
)
def test_errors_name_the_variable_and_the_value(variable: str, raw: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RetryPolicy.from_env("R", environ={variable: raw})
    assert str(caught.value).startswith(expected)
    assert caught.value.parameter == variable
    assert caught.value.value == raw


@pytest.mark.parametrize(
    ("environ", "message", "parameter", "value"),
    [
        (
            {"X_ATTEMPTS": "4", "X_MIN_WAIT": "20"},
            "X_MIN_WAIT='20' conflicts with the base policy's max_wait=10.0: "
            "min_wait must be <= max_wait",
            "X_MIN_WAIT",
            "20",
        ),
        (
            {"X_ATTEMPTS": "4", "X_MAX_WAIT": "0.1"},
            "X_MAX_WAIT='0.1' conflicts with the base policy's min_wait=0.5: "
            "min_wait must be <= max_wait",
            "X_MAX_WAIT",
            "0.1",
        ),
        (
            {"X_MIN_WAIT": "5", "X_MAX_WAIT": "1", "X_JITTER": "2"},
            "X_MIN_WAIT='5', X_MAX_WAIT='1' conflict: min_wait must be <= max_wait",
            "X_MIN_WAIT, X_MAX_WAIT",
            {"X_MIN_WAIT": "5", "X_MAX_WAIT": "1"},
        ),
    ],
)
def test_a_conflict_between_fields_blames_the_variables_involved(
    environ: dict[str, str], message: str, parameter: str, value: object
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RetryPolicy.from_env("X", environ=environ)
    assert str(caught.value) == message
    assert (caught.value.parameter, caught.value.value) == (parameter, value)


def test_a_field_the_policy_refuses_names_its_variable_first() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RetryPolicy.from_env(
            "X", environ={"X_ATTEMPTS": "2", "X_RETRY_ON": "builtins.KeyboardInterrupt"}
        )
    assert str(caught.value).startswith(
        "X_RETRY_ON='builtins.KeyboardInterrupt': retry_on lists KeyboardInterrupt, which is never "
        "retried"
    )
    assert caught.value.parameter == "X_RETRY_ON"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("preset", ["redis", REDIS], ids=["by-name", "by-constant"])
def test_the_redis_preset_reads_its_variables_when_a_function_is_decorated(
    preset: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("REDIS_RETRY_MIN_WAIT", "0")
    monkeypatch.setenv("REDIS_RETRY_MAX_WAIT", "0")
    calls = Flaky(*[ConnectionError("refused")] * 10)
    fn = retry(preset)(calls)  # type: ignore[call-overload]
    monkeypatch.setenv("REDIS_RETRY_ATTEMPTS", "7")  # read at decoration, not per call
    assert fn() is None
    assert calls.calls == 5
    # The constant keeps the preset's own numbers.
    assert (REDIS.attempts, REDIS.min_wait, REDIS.max_wait) == (3, 0.5, 2.0)


def test_explicit_overrides_win_over_the_redis_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_RETRY_ATTEMPTS", "5")
    calls = Flaky(*[ConnectionError("refused")] * 10)
    with no_waits():
        assert retry("redis", attempts=2)(calls)() is None
    assert calls.calls == 2


def test_resilient_with_the_redis_preset_reads_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_RETRY_ATTEMPTS", "4")
    calls = Flaky(*[ConnectionError("refused")] * 10)
    with no_waits():
        assert resilient(retry="redis")(calls)() is None
    assert calls.calls == 4


def test_a_bad_redis_variable_fails_the_decoration_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_RETRY_ATTEMPTS", "lots")
    with pytest.raises(ConfigurationError) as caught:
        retry("redis")
    assert str(caught.value) == "REDIS_RETRY_ATTEMPTS must be an int >= 1, got 'lots'"
    assert caught.value.parameter == "REDIS_RETRY_ATTEMPTS"
    # Other presets and explicit policies do not read them.
    retry("database")
    retry(REDIS.replace(attempts=2))


def test_from_env_over_the_redis_constant_still_works() -> None:
    policy = RetryPolicy.from_env("REDIS_RETRY", base=REDIS, environ={"REDIS_RETRY_MAX_WAIT": "4"})
    assert (policy.name, policy.attempts, policy.max_wait) == ("redis", 3, 4.0)


def test_a_bad_redis_variable_does_not_break_the_import() -> None:
    result = _python(
        "import resilience_kit; from resilience_kit import REDIS; print(REDIS.attempts)",
        REDIS_RETRY_ATTEMPTS="lots",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3"]
