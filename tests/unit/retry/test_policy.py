"""RetryPolicy: validation, defaults, replace(), the presets' numbers."""

from __future__ import annotations

import logging

import pytest

from resilience_kit import (
    BEST_EFFORT,
    DATABASE,
    EXTERNAL_API,
    INTERACTIVE,
    INTERNAL_API,
    REDIS,
    CircuitOpenError,
    ConfigurationError,
    RetryPolicy,
)
from resilience_kit.retry import PRESETS


def test_defaults_follow_the_contract() -> None:
    policy = RetryPolicy()
    assert (policy.attempts, policy.wait, policy.min_wait, policy.max_wait) == (
        3,
        "exponential",
        0.5,
        10.0,
    )
    assert (policy.multiplier, policy.jitter, policy.deadline) == (1.0, 0.0, None)
    assert policy.retry_on == (Exception,)
    assert policy.give_up_on == (CircuitOpenError,)
    assert (policy.on_exhausted, policy.default, policy.log_level, policy.name) == (
        "raise",
        None,
        logging.WARNING,
        "custom",
    )


def test_policy_is_frozen_and_keyword_only() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.attempts = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(5)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": 2.0}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"wait": "linear"}, "wait"),
        ({"min_wait": -0.1}, "min_wait"),
        ({"min_wait": 5.0, "max_wait": 4.0}, "max_wait"),
        ({"max_wait": float("inf")}, "max_wait"),
        ({"multiplier": 0}, "multiplier"),
        ({"jitter": -1}, "jitter"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": float("nan")}, "deadline"),
        ({"retry_on": ValueError()}, "retry_on"),
        ({"give_up_on": ("ValueError",)}, "give_up_on"),
        ({"on_exhausted": "ignore"}, "on_exhausted"),
        ({"log_level": -1}, "log_level"),
        ({"name": ""}, "name"),
        ({"retry_if": 3}, "retry_if"),
        ({"retry_after": "soon"}, "retry_after"),
        ({"retry_if_result": 503}, "retry_if_result"),
        ({"on_retry": "print"}, "on_retry"),
    ],
)
def test_out_of_range_values_name_the_parameter_and_value(
    changes: dict[str, object], parameter: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RetryPolicy(**changes)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter} must be")
    assert repr(changes[parameter])[:20] in str(caught.value)


def test_single_exception_classes_are_normalised_to_tuples() -> None:
    policy = RetryPolicy(retry_on=ValueError, give_up_on=KeyError)  # type: ignore[arg-type]
    assert policy.retry_on == (ValueError,)
    assert policy.give_up_on == (KeyError, CircuitOpenError)


def test_circuit_open_error_is_always_given_up_on() -> None:
    assert CircuitOpenError in RetryPolicy(give_up_on=(ValueError,)).give_up_on
    # A broader class already covers it: no duplicate.
    assert RetryPolicy(give_up_on=(Exception,)).give_up_on == (Exception,)
    for preset in PRESETS.values():
        assert issubclass(CircuitOpenError, preset.give_up_on)


def test_replace_returns_a_validated_copy() -> None:
    changed = DATABASE.replace(attempts=7, min_wait=0.1)
    assert (changed.attempts, changed.min_wait, changed.name) == (7, 0.1, "database")
    assert DATABASE.attempts == 3
    with pytest.raises(ConfigurationError, match="attempts must be an int >= 1, got 0"):
        DATABASE.replace(attempts=0)


def test_replace_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigurationError, match="tries is not a RetryPolicy field") as caught:
        DATABASE.replace(tries=3)
    assert caught.value.parameter == "tries"


def test_presets_carry_the_issue_numbers() -> None:
    assert (DATABASE.attempts, DATABASE.wait, DATABASE.multiplier) == (3, "exponential", 1.0)
    assert (DATABASE.min_wait, DATABASE.max_wait, DATABASE.on_exhausted) == (2.0, 10.0, "raise")
    assert (REDIS.attempts, REDIS.min_wait, REDIS.max_wait) == (3, 0.5, 2.0)
    assert (REDIS.on_exhausted, REDIS.default) == ("return_default", None)
    assert (EXTERNAL_API.attempts, EXTERNAL_API.wait, EXTERNAL_API.jitter) == (
        3,
        "exponential",
        1.0,
    )
    assert EXTERNAL_API.retry_after is not None
    assert (INTERNAL_API.attempts, INTERNAL_API.wait, INTERNAL_API.min_wait) == (3, "fixed", 2.0)
    assert (BEST_EFFORT.attempts, BEST_EFFORT.on_exhausted) == (2, "return_default")
    assert BEST_EFFORT.min_wait <= 1.0
    # A user waits: a few seconds in all, sub-second waits.
    assert (INTERACTIVE.attempts, INTERACTIVE.deadline, INTERACTIVE.max_wait) == (3, 3.0, 0.5)
    assert PRESETS == {
        "database": DATABASE,
        "redis": REDIS,
        "external_api": EXTERNAL_API,
        "internal_api": INTERNAL_API,
        "best_effort": BEST_EFFORT,
        "interactive": INTERACTIVE,
    }
    assert all(preset.name == name for name, preset in PRESETS.items())
