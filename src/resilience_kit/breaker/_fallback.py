"""How a fallback is called: the guarded call's own arguments, plus ``error=`` if it asks.

Shared by the breaker and by ``resilient()``, which follows the breaker's rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from resilience_kit.errors import ConfigurationError

__all__ = ["accepts", "answer", "check_fits", "resolve"]


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


def check_fits(
    fallback: Callable[..., Any] | None,
    fn: Callable[..., Any],
    *,
    passes_error: bool,
    owner: str,
) -> None:
    """Refuse, at decoration, a ``fallback`` that could not take a call of ``fn``.

    The fallback gets the call's own arguments (``self`` too, for a method), plus ``error=``
    when ``passes_error``. A call of ``fn`` with its required arguments only must bind to the
    fallback's signature, and one with every argument, its optional ones passed positionally
    or by keyword. A function that takes ``*args`` or ``**kwargs`` (whose calls cannot be
    known), or whose signature Python cannot read (some builtins), is not checked.

    Raises:
        ConfigurationError: One of those calls does not bind, naming ``owner`` (where the
            fallback was given), both callables and the reason.
    """
    if fallback is None:
        return
    try:
        called = inspect.signature(fn)
        answering = inspect.signature(fallback)
    except (TypeError, ValueError):
        return
    kind = inspect.Parameter
    if any(p.kind in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD) for p in called.parameters.values()):
        return  # a generic function (a proxy, a test double): its calls cannot be known
    extra = {"error": None} if passes_error else {}
    fewest, *most = _sample_calls(called)
    problem: TypeError | None = None
    # The fewest arguments must bind, and the most in one of the ways they may be passed.
    for candidates in ([fewest], most):
        for args, keywords in candidates:
            try:
                answering.bind(*args, **keywords, **extra)
            except TypeError as refused:
                problem = refused
            else:
                problem = None
                break
        if problem is not None:
            name = getattr(fn, "__qualname__", None) or repr(fn)
            raise ConfigurationError(
                f"fallback {fallback!r} of {owner} cannot take the arguments of {name}"
                f"{called}: {problem}. The fallback is called with the call's own arguments"
                f"{' and error=' if passes_error else ''}; give it the same parameters, or "
                "*args and **kwargs",
                parameter="fallback",
                value=fallback,
            )


def _sample_calls(
    signature: inspect.Signature,
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Calls that ``signature`` (without ``*args`` or ``**kwargs``) accepts: the fewest
    arguments (positionally where allowed), then every argument in two ways: optional
    parameters positionally, or by keyword."""
    kind = inspect.Parameter
    calls = []
    for everything, by_keyword in ((False, False), (True, False), (True, True)):
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for parameter in signature.parameters.values():
            optional = parameter.default is not parameter.empty
            if optional and not everything:
                continue
            if parameter.kind is kind.POSITIONAL_ONLY:
                args.append(None)
            elif parameter.kind is kind.POSITIONAL_OR_KEYWORD:
                if optional and by_keyword:
                    kwargs[parameter.name] = None
                else:
                    args.append(None)
            else:  # keyword-only
                kwargs[parameter.name] = None
        calls.append((tuple(args), kwargs))
    return calls
