"""``with breaker:`` and ``async with breaker:``: a block admitted and judged as one call.

A block's admission is kept in a context variable until it exits, so blocks nest and run in
many threads and tasks at once; ``fallback`` does not apply (a block has no value to replace).
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

from resilience_kit.breaker._machine import REJECT, Period
from resilience_kit.breaker._outcomes import NO_RESULT, admit, failed, rejection, succeeded

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker

__all__ = ["enter_block", "exit_block"]

# The admissions of ``with breaker:`` blocks in progress, innermost last, per thread and task.
_entered: contextvars.ContextVar[tuple[tuple[CircuitBreaker, Period, float], ...]] = (
    contextvars.ContextVar("resilience_kit_breaker_entered", default=())
)


def enter_block(breaker: CircuitBreaker, now: float) -> None:
    """Admit a block, or raise the rejection (there is no value for a fallback to replace)."""
    ticket = admit(breaker, now)
    if ticket is REJECT:
        raise rejection(breaker, now)
    _entered.set((*_entered.get(), (breaker, ticket, now)))


def exit_block(breaker: CircuitBreaker, error: BaseException | None) -> None:
    """Judge the innermost block of ``breaker`` entered in this thread or task."""
    stack = _entered.get()
    for index in range(len(stack) - 1, -1, -1):
        if stack[index][0] is breaker:
            _, ticket, started = stack[index]
            _entered.set(stack[:index] + stack[index + 1 :])
            break
    else:  # __exit__ without __enter__ in this thread or task: nothing to record
        return
    if error is None:
        succeeded(breaker, NO_RESULT, ticket, started)
    else:
        failed(breaker, error, ticket, started)
