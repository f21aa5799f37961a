"""What a decorator has been given: an async callable, a generator function, or a plain one.

``inspect.iscoroutinefunction`` alone misses objects whose class has ``async def __call__`` (API
clients often are such objects), and a decorator that takes one of those for a plain function
wraps it synchronously: the wrapper hands back the coroutine unawaited and its outcome is never
seen. These helpers look through `functools.partial()` and at ``type(obj).__call__`` too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["adopt_metadata", "generator_kind", "is_async_callable"]


def _target(fn: Any) -> Any:
    """The code that runs when ``fn`` is called: partials unwrapped, an instance's ``__call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.isfunction(fn) or inspect.ismethod(fn) or isinstance(fn, type):
        return fn
    # An object's own __call__ (for a builtin, a slot wrapper: neither async nor a generator).
    return type(fn).__call__ if callable(fn) else fn


def is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` returns a coroutine to await.

    True for an ``async def`` function or method, a `functools.partial()` of one, and an
    object whose class defines ``async def __call__``.
    """
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(_target(fn))


def generator_kind(fn: Any) -> str | None:
    """``"generator function"`` or ``"async generator function"`` if calling ``fn`` makes one
    (looking through partials and ``__call__`` as `is_async_callable()` does), else ``None``.
    """
    target = _target(fn)
    if inspect.isasyncgenfunction(fn) or inspect.isasyncgenfunction(target):
        return "async generator function"
    if inspect.isgeneratorfunction(fn) or inspect.isgeneratorfunction(target):
        return "generator function"
    return None


def adopt_metadata(wrapper: Callable[..., Any], fn: Any) -> None:
    """`functools.update_wrapper()`, with a useful name for a partial or a callable object.

    A partial has no ``__name__``, and ``update_wrapper`` would leave the wrapper's own
    (``guarded``) in tracebacks and logs: the wrapped function's name is taken instead, or the
    class name of a callable object. An object's attributes are not copied onto the wrapper.
    """
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        functools.update_wrapper(wrapper, fn)
        return
    functools.update_wrapper(wrapper, fn, updated=())
    inner = fn
    while isinstance(inner, functools.partial):
        inner = inner.func
    named = inner if hasattr(inner, "__name__") else type(inner)
    if not hasattr(fn, "__name__"):
        wrapper.__name__ = named.__name__
        wrapper.__qualname__ = getattr(named, "__qualname__", named.__name__)
    if isinstance(fn, functools.partial):  # not the partial class's own module and doc
        wrapper.__module__ = getattr(inner, "__module__", wrapper.__module__)
        wrapper.__doc__ = getattr(inner, "__doc__", None)
