"""How a fallback is called: the guarded call's own arguments, plus ``error=`` if it asks.

Shared by the breaker and by ``resilient()``, which follows the breaker's rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["accepts", "answer", "resolve"]


def accepts(fn: Callable[..., Any] | None, keyword: str) -> bool:
    """Whether ``fn`` declares a parameter called ``keyword`` that can be passed by name."""
    if fn is None:
        return False
    try:
        parameter = inspect.signature(fn).parameters.get(keyword)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def answer(
    fallback: Callable[..., Any],
    passes_error: bool,
    error: BaseException,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``fallback``'s answer for a call made with ``args`` and ``kwargs`` that ended in ``error``.

    The exception goes in as ``error=`` when the fallback declares that parameter, unless the
    call passed an ``error`` keyword of its own: the fallback gets the call's arguments as they
    were, and a call's own argument is never overwritten.
    """
    if passes_error and "error" not in kwargs:
        return fallback(*args, **kwargs, error=error)
    return fallback(*args, **kwargs)


async def resolve(result: Any) -> Any:
    """A fallback's answer, awaited if it is awaitable (an async fallback)."""
    return await result if inspect.isawaitable(result) else result
