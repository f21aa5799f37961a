"""Case builders shared by the retry sections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks._harness import Context, Prepared
from benchmarks.sections._common import RESULT, expect, failing
from benchmarks.sections._retries import RetryAdapter


def success_case(adapter: RetryAdapter, fn: Callable[..., Any]) -> Callable[[Context], Prepared]:
    """A setup: ``fn`` (which never fails) under a 3-attempt policy; one call, one attempt."""

    def setup(ctx: Context) -> Prepared:
        built = adapter.build(ctx, 3, False)
        op = built.decorate(fn)
        check = None
        if built.last_attempts is not None:
            last_attempts = built.last_attempts

            def check() -> None:
                made = last_attempts(op)
                expect(made == 1, f"the first attempt should succeed, {made} attempts were made")

        return Prepared(op, returns=RESULT, check=check, reset=built.reset)

    return setup


def failure_case(adapter: RetryAdapter, attempts: int) -> Callable[[Context], Prepared]:
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
