"""``@cached`` and the functions that reach its entries by prefix."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Concatenate, Protocol, TypeVar, overload

from typing_extensions import ParamSpec, Self

from resilience_kit import clock as _clock_module
from resilience_kit._callables import adopt_metadata, generator_kind, is_async_callable
from resilience_kit._validation import check_bool, check_callable, check_clock, check_number
from resilience_kit.cache._backend import CacheBackend, routing
from resilience_kit.cache._flow import Spec
from resilience_kit.cache._frame import Entry
from resilience_kit.cache._keys import DIGEST_HEX, KeyBuilder, check_name, escape_glob
from resilience_kit.cache._stats import counters_for
from resilience_kit.cache.serializers import JsonSerializer, Serializer
from resilience_kit.clock import Clock
from resilience_kit.errors import ConfigurationError

__all__ = [
    "AsyncCachedFunction",
    "BoundCachedMethod",
    "CachedFunction",
    "cached",
    "configure",
    "invalidate_cache",
    "invalidate_pattern",
    "invalidate_prefix",
]

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
S = TypeVar("S")
R_co = TypeVar("R_co", covariant=True)
_DEFAULT_SERIALIZER = JsonSerializer()


class BoundCachedMethod(Protocol[P, R_co]):
    """A cached method read from an instance: called without ``self``.

    Its ``invalidate`` is the function's: pass an instance (any, as ``self`` is not part of the
    key unless ``include_self=True``) as the first argument.
    """

    prefix: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Call through the cache."""
        ...

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        """Delete the entry a call with these arguments would read."""
        ...


class CachedFunction(Protocol[P, R_co]):
    """A sync function wrapped by [cached][resilience_kit.cache.cached]."""

    prefix: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Call through the cache."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Delete the entry a call with these arguments would read."""
        ...

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, Q], R],
        instance: S,
        owner: type[Any] | None = None,
    ) -> BoundCachedMethod[Q, R]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        """Methods: an instance's attribute is bound to it, as a function's is."""
        ...


class AsyncCachedFunction(Protocol[P, R_co]):
    """An async function wrapped by [cached][resilience_kit.cache.cached]."""

    prefix: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R_co]:
        """Call through the cache."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[None]:
        """Delete the entry a call with these arguments would read (await it)."""
        ...

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(
        self: AsyncCachedFunction[Concatenate[S, Q], R],
        instance: S,
        owner: type[Any] | None = None,
    ) -> BoundCachedMethod[Q, Coroutine[Any, Any, R]]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        """Methods: an instance's attribute is bound to it, as a function's is."""
        ...


class _Registered:
    __slots__ = ("is_async", "spec", "wrapper")

    def __init__(self, spec: Spec, wrapper: Callable[..., Any], is_async: bool) -> None:
        self.spec = spec
        self.wrapper = weakref.ref(wrapper)
        self.is_async = is_async


_registry: dict[str, _Registered] = {}


def _register(spec: Spec, wrapper: Callable[..., Any], is_async: bool) -> None:
    known = _registry.get(spec.prefix)
    if known is not None and known.wrapper() is not None:
        old = known.spec.fn
        same = getattr(old, "__module__", None) == getattr(spec.fn, "__module__", None) and (
            getattr(old, "__qualname__", None) == getattr(spec.fn, "__qualname__", None)
        )
        if not same:
            raise ConfigurationError(
                f"prefix {spec.prefix!r} is already used by {known.spec.name}(); each cached "
                f"function needs its own prefix (got it again for {spec.name}())",
                parameter="prefix",
                value=spec.prefix,
            )
    _registry[spec.prefix] = _Registered(spec, wrapper, is_async)


def _lookup(prefix: str) -> _Registered:
    known = _registry.get(prefix)
    if known is None or known.wrapper() is None:
        raise LookupError(f"no live @cached function has the prefix {prefix!r}")
    return known


class _Decorator:
    """What ``cached(...)`` returns: applied to a def or an async def."""

    def __init__(self, build: Callable[[Callable[..., Any]], Any]) -> None:
        self._build = build

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncCachedFunction[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> CachedFunction[P, R]: ...

    def __call__(self, fn: Callable[..., Any]) -> Any:
        return self._build(fn)


def cached(
    prefix: str,
    ttl: float = 600,
    *,
    backend: CacheBackend | None = None,
    key: Callable[..., str] | None = None,
    serializer: Serializer | None = None,
    cache_none: bool = False,
    condition: Callable[[Any], bool] | None = None,
    stale_ttl: float | None = None,
    lock: bool = True,
    ttl_jitter: float = 0.0,
    early_refresh: float | None = None,
    include_self: bool = False,
    exclude: Iterable[str] = (),
    clock: Clock | None = None,
) -> _Decorator:
    """Cache a function's results by its arguments: `def` and `async def`, functions and methods.

    Args:
        prefix: The function's own name in the cache (letters, digits, ``_ . - /``, single
            ``:``); [invalidate_cache][resilience_kit.cache.invalidate_cache] and
            [invalidate_prefix][resilience_kit.cache.invalidate_prefix] find it by this.
        ttl: Seconds a result stays fresh (> 0).
        backend: Where entries live; by default the process's (see
            [configure][resilience_kit.cache.configure]), read at each call.
        key: Builds the key text from the call's arguments instead of the canonical encoding
            (it is escaped and hashed like any argument, and stays inside the prefix).
        serializer: How values are stored; [JsonSerializer][resilience_kit.cache.JsonSerializer]
            by default.
        cache_none: Whether a ``None`` result is cached (it is not by default).
        condition: Called with each result; only results it accepts are cached.
        stale_ttl: Seconds past ``ttl`` an entry may still be served while one caller
            refreshes it (>= 0; None: never).
        lock: Single-flight on a miss: one computation per key in the process (threads and
            tasks alike) and, on a backend with leases (Redis), across processes.
        ttl_jitter: Shortens each entry's ttl by a random share up to this (0 <= j < 1), so
            entries written together do not all expire together.
        early_refresh: XFetch's beta (> 0, 1.0 is the paper's): refresh a fresh entry before it
            expires, the likelier the closer to expiry and the slower it was to compute.
        include_self: Make ``self``/``cls`` part of the key (left out by default, so every
            instance shares the entries).
        exclude: Parameters left out of the key (a session, a logger).
        clock: The clock for entry times; by default the library's (a test's FakeClock
            reaches it).

    Raises:
        ConfigurationError: A value is out of range, or ``prefix`` belongs to another function.
        TypeError: At call time, an argument has no canonical encoding (the message names the
            parameter), or the serializer cannot encode the result (names the function and
            type; nothing is stored).
    """
    name = check_name("prefix", prefix)
    ttl = check_number("ttl", ttl, minimum=0, min_inclusive=False)
    stale = 0.0 if stale_ttl is None else check_number("stale_ttl", stale_ttl, minimum=0)
    jitter = check_number("ttl_jitter", ttl_jitter, minimum=0, maximum=1, max_inclusive=False)
    beta = (
        None
        if early_refresh is None
        else check_number("early_refresh", early_refresh, minimum=0, min_inclusive=False)
    )
    check_callable("key", key)
    check_callable("condition", condition)
    cache_none = check_bool("cache_none", cache_none)
    lock = check_bool("lock", lock)
    include_self = check_bool("include_self", include_self)
    clock = check_clock("clock", clock)
    chosen = _DEFAULT_SERIALIZER if serializer is None else serializer
    if not isinstance(chosen, Serializer) or not 1 <= getattr(chosen, "format_id", 0) <= 255:
        raise ConfigurationError(
            f"serializer must have dumps(), loads() and a format_id from 1 to 255, "
            f"got {serializer!r}",
            parameter="serializer",
            value=serializer,
        )
    if backend is not None and not isinstance(backend, CacheBackend):
        raise ConfigurationError(
            f"backend must be a CacheBackend (MemoryBackend, RedisBackend), got {backend!r}",
            parameter="backend",
            value=backend,
        )
    try:
        excluded: tuple[Any, ...] = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    except TypeError:  # not iterable: refused just below
        excluded = (exclude,)
    if not all(isinstance(name, str) for name in excluded):
        raise ConfigurationError(
            f"exclude must be parameter names (str), got {exclude!r}",
            parameter="exclude",
            value=exclude,
        )

    def decorate(fn: Callable[..., Any]) -> Any:
        kind = generator_kind(fn)
        if kind is not None:
            raise ConfigurationError(
                f"@cached cannot cache a {kind} ({fn!r}): its values are produced lazily; "
                "cache a function that returns a list instead",
                parameter="fn",
                value=fn,
            )
        is_async = is_async_callable(fn)
        if not is_async and backend is not None and getattr(backend, "sync_capable", True) is False:
            raise ConfigurationError(
                f"{backend!r} has only an asyncio client, which a def function cannot use; "
                "give it a sync client or a URL",
                parameter="backend",
                value=backend,
            )
        spec = Spec(
            fn,
            prefix=name,
            ttl=ttl,
            keys=KeyBuilder(
                fn, head="{" + name + "}", include_self=include_self, exclude=excluded, custom=key
            ),
            backend=backend,
            serializer=chosen,
            cache_none=cache_none,
            condition=condition,
            stale_ttl=stale,
            lock=lock,
            ttl_jitter=jitter,
            early_refresh=beta,
            clock=clock,
            counters=counters_for(name),
        )
        wrapper = _async_wrapper(spec) if is_async else _sync_wrapper(spec)
        adopt_metadata(wrapper, fn)
        wrapper.prefix = name  # type: ignore[attr-defined]
        wrapper.invalidate = _invalidator(spec, is_async)  # type: ignore[attr-defined]
        _register(spec, wrapper, is_async)
        return wrapper

    return _Decorator(decorate)


def _sync_wrapper(spec: Spec) -> Callable[..., Any]:
    build = spec.keys.build
    counters = spec.counters
    prefix = spec.prefix
    fn = spec.fn
    own = spec.backend
    read, fill, early = spec.read, spec.fill, spec.early_refresh
    own_clock = spec.clock
    clocks = _clock_module

    def cached_call(*args: Any, **kwargs: Any) -> Any:
        key = build(args, kwargs)
        if key is None:
            return fn(*args, **kwargs)  # the arguments do not fit: let the function say so
        backend = routing.override or own or routing.default
        try:
            raw, generation = backend.get(prefix, key)
        except Exception as error:
            spec.failed(error, "reading")
            return fill(backend, key, None, None, (args, kwargs))
        if raw is None:
            entry = None
        elif type(raw) is Entry:  # a memory backend's, or a two-tier L1's
            entry = raw if raw.generation == generation else None
        else:
            entry = read(backend, key, raw, generation)
        if entry is not None:
            clock = own_clock or clocks._default
            moment = clock.wall() if backend.shared else clock.monotonic()
            if moment < entry.fresh_until:
                if not early or not spec.early(moment, entry):
                    next(counters.hits)
                    return entry.value
            elif moment >= entry.stale_until:
                entry = None
        return fill(backend, key, entry, generation, (args, kwargs))

    return cached_call


def _async_wrapper(spec: Spec) -> Callable[..., Any]:
    build = spec.keys.build
    counters = spec.counters
    prefix = spec.prefix
    fn = spec.fn
    own = spec.backend
    read, afill, early = spec.read, spec.afill, spec.early_refresh
    own_clock = spec.clock
    clocks = _clock_module

    async def cached_call(*args: Any, **kwargs: Any) -> Any:
        key = build(args, kwargs)
        if key is None:
            return await fn(*args, **kwargs)
        backend = routing.override or own or routing.default
        try:
            peek = getattr(backend, "peek", None)
            found = None if peek is None else peek(prefix, key)  # a two-tier L1, no await
            if found is not None:
                raw, generation = found
            elif backend.native_async:
                raw, generation = await backend.aget(prefix, key)  # type: ignore[attr-defined]
            else:
                raw, generation = backend.get(prefix, key)
        except Exception as error:
            spec.failed(error, "reading")
            return await afill(backend, key, None, None, (args, kwargs))
        if raw is None:
            entry = None
        elif type(raw) is Entry:  # a memory backend's, or a two-tier L1's
            entry = raw if raw.generation == generation else None
        else:
            entry = read(backend, key, raw, generation)
        if entry is not None:
            clock = own_clock or clocks._default
            moment = clock.wall() if backend.shared else clock.monotonic()
            if moment < entry.fresh_until:
                if not early or not spec.early(moment, entry):
                    next(counters.hits)
                    return entry.value
            elif moment >= entry.stale_until:
                entry = None
        return await afill(backend, key, entry, generation, (args, kwargs))

    return cached_call


# -- invalidation -------------------------------------------------------------------------------


def _key_of(spec: Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    key = spec.keys.build(args, kwargs)
    if key is None:
        raise TypeError(f"these arguments do not fit {spec.name}(): {args!r}, {kwargs!r}")
    return key


def _run(backend: CacheBackend, is_async: bool, method: str, *args: Any) -> Any:
    """Call ``backend.method(*args)``; a coroutine for async callers (``await`` it or hand it to
    ``asyncio.run``), done at once when the backend has no awaitable twin."""
    if is_async and backend.native_async:
        return getattr(backend, "a" + method)(*args)
    result = getattr(backend, method)(*args)
    return _finished(result) if is_async else result


async def _finished(result: Any) -> Any:
    """``result`` of work already done, as a coroutine."""
    return result


def _invalidator(spec: Spec, is_async: bool) -> Callable[..., Any]:
    def invalidate(*args: Any, **kwargs: Any) -> Any:
        """Delete the entry a call with these arguments reads (awaitable for an async function)."""
        key = _key_of(spec, args, kwargs)
        return _run(spec.current_backend(), is_async, "delete", spec.prefix, key)

    return invalidate


def invalidate_cache(prefix: str, /, *args: Any, **kwargs: Any) -> Any:
    """Delete the one entry that the function cached under ``prefix`` reads for these arguments.

    Awaitable when that function is async (``await invalidate_cache("profile", user_id)``, as
    the original code did); a sync function's entry is deleted before it returns.

    Raises:
        LookupError: No live function is cached under ``prefix``.
    """
    known = _lookup(prefix)
    spec = known.spec
    return _run(
        spec.current_backend(), known.is_async, "delete", prefix, _key_of(spec, args, kwargs)
    )


def invalidate_prefix(prefix: str, /, *, backend: CacheBackend | None = None) -> Any:
    """Make every entry under ``prefix`` stale at once: O(1), without KEYS or SCAN.

    The prefix's generation moves on; entries of older generations are never served again and
    expire by their ttl. A computation that started before the call does not bring its result
    back either. Awaitable when the function is async. ``backend`` reaches a prefix no function
    in this process has registered (say, from an admin process).

    Raises:
        LookupError: No live function is cached under ``prefix`` and no ``backend`` is given.
    """
    check_name("prefix", prefix)
    if backend is not None:
        return _run(backend, backend.native_async, "bump", prefix)
    known = _lookup(prefix)
    return _run(known.spec.current_backend(), known.is_async, "bump", prefix)


def invalidate_pattern(prefix: str, pattern: str, /) -> Any:
    """Delete the entries of ``prefix`` whose readable key part matches the glob ``pattern``.

    For the original code's callers (``invalidate_pattern("profile", "42:*")``). The pattern
    covers the part between the prefix and the digest: the int and str arguments in order,
    ``:``-separated (``_`` stands for any other argument); build literal pieces with
    [key_part][resilience_kit.cache.key_part]. It matches only inside ``prefix``: the prefix
    is fixed and escaped, and arguments are escaped in keys, so no value can act as a pattern.
    Scans the keys (SCAN on Redis): prefer
    [invalidate_prefix][resilience_kit.cache.invalidate_prefix] or
    [invalidate_cache][resilience_kit.cache.invalidate_cache]. Returns how many entries were
    deleted (awaitable when the function is async).

    Raises:
        LookupError: No live function is cached under ``prefix``.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ConfigurationError(
            f"pattern must be a non-empty str, got {pattern!r}", parameter="pattern", value=pattern
        )
    known = _lookup(prefix)
    glob = escape_glob("{" + prefix + "}:") + pattern + ":" + "?" * DIGEST_HEX
    return _run(known.spec.current_backend(), known.is_async, "delete_matching", prefix, glob)


def configure(*, backend: CacheBackend) -> CacheBackend:
    """Make ``backend`` the default for every cached function given none; return the previous.

    Takes effect at once, also for functions decorated before (they read it at each call).
    """
    if not isinstance(backend, CacheBackend):
        raise ConfigurationError(
            f"backend must be a CacheBackend, got {backend!r}", parameter="backend", value=backend
        )
    previous, routing.default = routing.default, backend
    return previous
