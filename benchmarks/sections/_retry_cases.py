"""Case builders shared by the retry sections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks._harness import Context, Prepared
from benchmarks.sections import _breakers as b
from benchmarks.sections import _retries as r
from benchmarks.sections._common import RESULT, expect, failing, ours


def success_case(adapter: r.RetryAdapter, fn: Callable[..., Any]) -> Callable[[Context], Prepared]:
    """A setup: ``fn`` (which never fails) under a 3-attempt policy; one call, one attempt."""

    def setup(ctx: Context) -> Prepared:
        built = adapter.build(ctx, 3, False)
        op = built.decorate(fn)
        return Prepared(op, returns=RESULT, check=_success_check(built, op), reset=built.reset)

    return setup


def _success_check(built: r.BuiltRetry, op: Callable[..., Any]) -> Callable[[], None] | None:
    if built.last_attempts is None:
        return None
    last_attempts = built.last_attempts

    def check() -> None:
        made = last_attempts(op)
        expect(made == 1, f"the first attempt should succeed, {made} attempts were made")

    return check


def _resilient(breaker: b.Built, retry: r.BuiltRetry, fn: Callable[..., Any]) -> Any:
    resilient = ours("resilience_kit.composition", "resilient")
    return resilient(breaker=breaker.breaker, retry=retry.policy)(fn)


def _stacked(breaker: b.Built, retry: r.BuiltRetry, fn: Callable[..., Any]) -> Any:
    # What resilient() does, with the peers: the retry outside, the breaker around each attempt.
    return retry.decorate(breaker.decorate(fn))


@dataclass(frozen=True)
class Composition:
    """A breaker and a retry policy put together, as a library's users write it."""

    breaker: b.Adapter
    retry: r.RetryAdapter
    compose: Callable[[b.Built, r.BuiltRetry, Callable[..., Any]], Any]


def _pyresilience_both(breaker: b.Built, retry: r.BuiltRetry, fn: Callable[..., Any]) -> Any:
    # pyresilience takes both configs in one decorator; the breaker adapter's decorate()
    # builds it, so both are given to it here.
    return breaker.decorate(fn)


def _pyresilience_breaker_and_retry(ctx: Context, threshold: int, timeout: float) -> b.Built:
    import pyresilience

    return b.pyresilience_built(
        ctx,
        circuit_breaker=pyresilience.CircuitBreakerConfig(
            failure_threshold=threshold, recovery_timeout=timeout, success_threshold=1
        ),
        retry=r.pyresilience_retry(3, zero_waits=False),
    )


RESILIENT = Composition(b.OURS, r.OURS, _resilient)
TENACITY_PYBREAKER = Composition(b.PYBREAKER, r.TENACITY, _stacked)
PYRESILIENCE = Composition(
    b.Adapter("pyresilience", "pyresilience", _pyresilience_breaker_and_retry),
    r.PYRESILIENCE,
    _pyresilience_both,
)


def composed_case(
    composition: Composition, fn: Callable[..., Any]
) -> Callable[[Context], Prepared]:
    """A setup: ``fn`` (which never fails) under a CLOSED breaker inside a 3-attempt retry.

    One call must return the result in one attempt and leave the breaker CLOSED.
    """

    def setup(ctx: Context) -> Prepared:
        breaker = composition.breaker.build(ctx, 5, 60.0)
        retry = composition.retry.build(ctx, 3, False)
        op = composition.compose(breaker, retry, fn)
        checks = [c for c in (_success_check(retry, op), b.state_check(breaker, "closed")) if c]

        def check() -> None:
            for each in checks:
                each()

        return Prepared(op, returns=RESULT, check=check, reset=retry.reset, close=breaker.close)

    return setup


def failure_case(adapter: r.RetryAdapter, attempts: int) -> Callable[[Context], Prepared]:
    """A setup: a function failing every time, retried ``attempts`` times with zero waits."""

    def setup(ctx: Context) -> Prepared:
        fn, calls = failing()
        built = adapter.build(ctx, attempts, True)
        reset_library = built.reset

        def reset() -> None:
            calls[0] = 0
            if reset_library is not None:
                reset_library()

        def check() -> None:
            expect(
                calls[0] == attempts, f"expected {attempts} attempts, the function ran {calls[0]}"
            )

        return Prepared(built.decorate(fn), raises=ValueError, check=check, reset=reset)

    return setup


def plain_attempts(attempts: int) -> Callable[[Context], Prepared]:
    """The baseline: the same failing function called ``attempts`` times in a plain loop."""

    def setup(ctx: Context) -> Prepared:
        fn, calls = failing()

        def plain() -> None:
            for _ in range(attempts - 1):
                try:  # noqa: SIM105 - the plain way, as the libraries do it
                    fn()
                except ValueError:
                    pass
            fn()

        def reset() -> None:
            calls[0] = 0

        def check() -> None:
            expect(calls[0] == attempts, f"expected {attempts} calls, got {calls[0]}")

        return Prepared(plain, raises=ValueError, check=check, reset=reset)

    return setup
