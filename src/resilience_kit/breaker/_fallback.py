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

    The fallback gets the call's own arguments as they were passed (``self`` too, for a
    method), plus ``error=`` when ``passes_error``. So every way of calling ``fn`` must bind to
    the fallback's signature: its required arguments alone and every argument, each with the
    parameters that may go either way passed by position up to some point and by keyword after
    it (a leading ``self`` or ``cls`` always by position). A function that takes ``*args`` or
    ``**kwargs`` (whose calls cannot be known), or whose signature Python cannot read (some
    builtins), is not checked.

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
    for args, keywords in _sample_calls(called):
        try:
            answering.bind(*args, **keywords, **extra)
        except TypeError as problem:
            name = getattr(fn, "__qualname__", None) or repr(fn)
            shown = ", ".join([*("..." for _ in args), *(f"{k}=..." for k in keywords)])
            raise ConfigurationError(
                f"fallback {fallback!r} of {owner} cannot take the arguments of {name}"
                f"{called}: a call {name}({shown}) would fail there ({problem}). The "
                f"fallback is called with the call's own arguments as they were passed"
                f"{' and error=' if passes_error else ''}; give it the same parameters, or "
                "*args and **kwargs",
                parameter="fallback",
                value=fallback,
            ) from None


def _sample_calls(
    signature: inspect.Signature,
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Every shape of call that ``signature`` (without ``*args`` or ``**kwargs``) accepts.

    The required arguments alone, then every argument; in each, the parameters that may be
    passed either way go by position up to a split and by keyword after it, for every split.
    """
    kind = inspect.Parameter
    parameters = list(signature.parameters.values())
    calls = []
    for everything in (False, True):
        chosen = [p for p in parameters if everything or p.default is p.empty]
        either = [p for p in chosen if p.kind is kind.POSITIONAL_OR_KEYWORD]
        # A method's self or cls is bound by the attribute lookup: always positional.
        first = 1 if either and either[0] is parameters[0] and either[0].name in _BOUND else 0
        for split in range(first, len(either) + 1):
            by_position = {p.name for p in either[:split]}
            args = tuple(
                None for p in chosen if p.kind is kind.POSITIONAL_ONLY or p.name in by_position
            )
            keywords = {
                p.name: None
                for p in chosen
                if p.kind is kind.KEYWORD_ONLY
                or (p.kind is kind.POSITIONAL_OR_KEYWORD and p.name not in by_position)
            }
            calls.append((args, keywords))
    return calls


_BOUND = frozenset({"self", "cls"})
