"""What kind of callable a decorator was given, decided once at decoration.

A decorator must know whether the callable returns a coroutine before it is ever called: the
sync wrapper would return the coroutine unawaited, so a failure inside it would never be seen,
retried or counted.
"""

from __future__ import annotations

import functools
import inspect

__all__ = ["is_async_callable"]


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine, as far as can be told without calling it.

    :func:`inspect.iscoroutinefunction` sees through bound methods and
    :func:`functools.partial` and honours ``inspect.markcoroutinefunction``; it misses an
    object whose class defines ``async def __call__`` (a client instance, or a partial of one),
    which is looked at here.
    """
    if inspect.iscoroutinefunction(fn):
        return True
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, type) or inspect.isroutine(fn):
        # Calling a class builds an instance, whatever its __call__ does; a plain function or
        # method already answered above.
        return False
    return callable(fn) and inspect.iscoroutinefunction(type(fn).__call__)
