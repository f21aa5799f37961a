"""The presets: policies for the usual dependencies, and resolving a policy or a preset name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from resilience_kit._retry.policy import RetryPolicy
from resilience_kit._transient import (
    retry_after_from_response,
    retryable_http_error,
    transient_database_error,
    transient_redis_error,
)
from resilience_kit.errors import ConfigurationError

# Each preset spells out its whole configuration, defaults included: it is read as its own
# documentation, so the repeated shape of these calls is kept on purpose.
DATABASE: Final = RetryPolicy(
    name="database",
    attempts=3,
    wait="exponential",
    multiplier=1.0,
    min_wait=2.0,
    max_wait=10.0,
    retry_on=(),
    retry_if=transient_database_error,
    on_exhausted="raise",
)
"""Transient database errors: 3 attempts, waits 2 s then 2 s (exponential, 2..10 s), re-raises."""

REDIS: Final = RetryPolicy(
    name="redis",
    attempts=3,
    wait="exponential",
    multiplier=1.0,
    min_wait=0.5,
    max_wait=2.0,
    retry_on=(),
    retry_if=transient_redis_error,
    on_exhausted="return_default",
    default=None,
)
"""Redis connection errors and timeouts: 3 attempts, waits 1 s then 2 s (exponential,
0.5..2 s), then returns None.

This constant holds the defaults. Decorating with it (``@retry(REDIS)``) or with its name
(``@retry("redis")``) applies the ``REDIS_RETRY_*`` environment variables read at that moment;
a bad value raises [`ConfigurationError`][resilience_kit.ConfigurationError] naming the variable
there."""

_REDIS_ENV_PREFIX: Final = "REDIS_RETRY"

EXTERNAL_API: Final = RetryPolicy(
    name="external_api",
    attempts=3,
    wait="exponential",
    multiplier=4.0,
    min_wait=4.0,
    max_wait=30.0,
    jitter=1.0,
    retry_on=(),
    retry_if=retryable_http_error,
    retry_after=retry_after_from_response,
    on_exhausted="raise",
)
"""Third-party HTTP APIs: 3 attempts, waits 4 s then 8 s plus up to 1 s of jitter, honours
``Retry-After`` up to 30 s; retries 429, 5xx, connection errors and timeouts."""

INTERNAL_API: Final = RetryPolicy(
    name="internal_api",
    attempts=3,
    wait="fixed",
    min_wait=2.0,
    retry_on=(),
    retry_if=retryable_http_error,
    on_exhausted="raise",
)
"""Your own services: 3 attempts, a fixed 2 s between them; retries 429, 5xx, connection
errors and timeouts."""

BEST_EFFORT: Final = RetryPolicy(
    name="best_effort",
    attempts=2,
    wait="fixed",
    min_wait=0.5,
    retry_on=(Exception,),
    on_exhausted="return_default",
    default=None,
)
"""Side work that must never fail the caller: 2 attempts, 0.5 s apart, then returns None."""


def transient_error(error: BaseException) -> bool:
    """Whether an error is worth retrying by any of the other presets' rules.

    [retryable_http_error][resilience_kit.retry.retryable_http_error],
    [transient_database_error][resilience_kit.retry.transient_database_error] or
    [transient_redis_error][resilience_kit.retry.transient_redis_error].
    """
    return (
        retryable_http_error(error)
        or transient_database_error(error)
        or transient_redis_error(error)
    )


INTERACTIVE: Final = RetryPolicy(
    name="interactive",
    attempts=3,
    wait="exponential",
    multiplier=0.1,
    min_wait=0.1,
    max_wait=0.5,
    jitter=0.1,
    deadline=3.0,
    retry_on=(),
    retry_if=transient_error,
    retry_after=retry_after_from_response,
    on_exhausted="raise",
)
"""Calls made while a user waits (a request handler): at most 3 attempts within 3 s in all,
waits 0.1 s then 0.2 s plus up to 0.1 s of jitter, a ``Retry-After`` honoured up to 0.5 s;
retries what the other presets retry (HTTP 408/429/5xx, connection errors and timeouts,
transient database and Redis errors), then re-raises.

The other presets wait 2 to 30 s between attempts: right for background work, far too long
for someone looking at a spinner. Here a blip is ridden out in a fraction of a second and an
outage fails fast, so the handler can answer (or fall back) while the user is still there. Give
each attempt a timeout of its own (`resilient(timeout=...)`, about 1 s) so that one slow
attempt cannot use up the whole deadline."""

PRESETS: Final[Mapping[str, RetryPolicy]] = {
    "database": DATABASE,
    "redis": REDIS,
    "external_api": EXTERNAL_API,
    "internal_api": INTERNAL_API,
    "best_effort": BEST_EFFORT,
    "interactive": INTERACTIVE,
}
"""The presets by the names ``@retry("...")`` accepts."""


def _resolve(policy_or_preset: RetryPolicy | str, overrides: Mapping[str, Any]) -> RetryPolicy:
    if isinstance(policy_or_preset, RetryPolicy):
        policy = policy_or_preset
    elif isinstance(policy_or_preset, str) and policy_or_preset in PRESETS:
        policy = PRESETS[policy_or_preset]
    else:
        raise ConfigurationError(
            "policy_or_preset must be a RetryPolicy or one of "
            f"{', '.join(repr(n) for n in PRESETS)}, got {policy_or_preset!r}",
            parameter="policy_or_preset",
            value=policy_or_preset,
        )
    if policy is REDIS:
        # Read at decoration, not at import: a bad variable must not break importing the
        # package, and a test's monkeypatch.setenv must reach the functions it decorates.
        policy = RetryPolicy.from_env(_REDIS_ENV_PREFIX, base=REDIS)
    return policy.replace(**overrides) if overrides else policy
