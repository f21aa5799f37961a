"""What a cached call does: look up, serve fresh or stale, or compute once and store.

One `Spec` per decorated function holds its settings; the sync and async paths below are
twins that differ only where they wait or do I/O. Every backend failure is counted and taken as
a miss; only the user's own errors (and `TypeError` for an unencodable result) reach the
caller.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from resilience_kit import clock as _clock_module
from resilience_kit.cache._backend import CacheBackend, routing
from resilience_kit.cache._frame import Entry, pack, unpack
from resilience_kit.cache._keys import KeyBuilder
from resilience_kit.cache._stats import Counters
from resilience_kit.cache.serializers import Serializer
from resilience_kit.clock import Clock
from resilience_kit.errors import CircuitOpenError

__all__ = ["Spec"]

_logger = logging.getLogger("resilience_kit.cache")
_ABANDONED = object()
_POLL = 0.02
_MISS = (None, None)
Call = tuple[tuple[Any, ...], dict[str, Any]]
"""A call's positional and keyword arguments."""


class _Flight:
    """One computation in progress in this process, that other threads wait for."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = _ABANDONED
        self.error: BaseException | None = None


class Spec:
    """One decorated function's settings and in-process state."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        prefix: str,
        ttl: float,
        keys: KeyBuilder,
        backend: CacheBackend | None,
        serializer: Serializer,
        cache_none: bool,
        condition: Callable[[Any], bool] | None,
        stale_ttl: float,
        lock: bool,
        ttl_jitter: float,
        early_refresh: float | None,
        clock: Clock | None,
        counters: Counters,
    ) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", repr(fn))
        self.prefix = prefix
        self.ttl = ttl
        self.keys = keys
        self.backend = backend
        self.serializer = serializer
        self.cache_none = cache_none
        self.condition = condition
        self.stale_ttl = stale_ttl
        self.lock = lock
        self.ttl_jitter = ttl_jitter
        self.early_refresh = early_refresh
        self.clock = clock
        self.counters = counters
        self.flights: dict[str, _Flight] = {}
        self.tasks: dict[str, asyncio.Future[Any]] = {}
        self.flights_lock = threading.Lock()

    # -- shared steps ---------------------------------------------------------------------------

    def current_backend(self) -> CacheBackend:
        return routing.override or self.backend or routing.default

    def now(self, backend: CacheBackend) -> float:
        clock = self.clock or _clock_module._default
        return clock.wall() if backend.shared else clock.monotonic()

    def failed(self, error: BaseException, doing: str) -> None:
        next(self.counters.errors)
        if isinstance(error, CircuitOpenError):
            _logger.debug("cache %r: %s skipped, %s", self.prefix, doing, error)
        else:
            _logger.warning(
                "cache %r: %s failed, treated as a miss: %s: %s",
                self.prefix,
                doing,
                type(error).__name__,
                error,
            )

    def read(
        self, backend: CacheBackend, key: str, raw: Any, generation: int, *, quiet: bool = False
    ) -> Entry | None:
        """The usable entry in ``raw``, or None (absent, older generation, or corrupt).

        Bytes are decoded (and handed to a two-tier backend's ``remember``); an
        [Entry][resilience_kit.cache._frame.Entry] is used as it is. ``quiet``: a corrupt entry
        is not counted (a second look within one call).
        """
        if raw is None:
            return None
        if type(raw) is Entry:
            entry: Entry = raw
        else:
            try:
                entry = unpack(raw, self.serializer)
            except ValueError as error:
                if not quiet:
                    self.failed(error, "decoding an entry")
                return None
            remember = getattr(backend, "remember", None)
            if remember is not None and entry.generation == generation:
                remember(self.prefix, key, entry)
        return entry if entry.generation == generation else None

    def usable(self, backend: CacheBackend, entry: Entry | None) -> Entry | None:
        """``entry`` unless it is past its stale time (then it is as good as absent)."""
        if entry is not None and self.now(backend) >= entry.stale_until:
            return None
        return entry

    def early(self, now: float, entry: Entry) -> bool:
        """XFetch: refresh a fresh entry early, the likelier the closer it is to expiring."""
        beta = self.early_refresh
        if not beta:
            return False
        draw = random.random() or 1e-300  # noqa: S311 - jitter, not a secret
        return now - entry.delta * beta * math.log(draw) >= entry.fresh_until

    def encode(self, value: Any) -> bytes | None:
        """The payload to store, None when the value is not to be cached.

        Raises:
            TypeError: The serializer cannot encode ``value`` (names the function and type).
        """
        if value is None and not self.cache_none:
            return None
        condition = self.condition
        if condition is not None and not condition(value):
            return None
        try:
            return self.serializer.dumps(value)
        except TypeError as error:
            kind = type(value)
            raise TypeError(
                f"{self.name}() returned a {kind.__module__}.{kind.__qualname__} that "
                f"{self.serializer!r} cannot encode, so it was not cached: {error}"
            ) from None

    def stored(
        self, backend: CacheBackend, value: Any, payload: bytes, generation: int, started: float
    ) -> tuple[Entry, Any, float]:
        """The entry for ``value``, what to hand the backend for it, and the backend's ttl."""
        now = self.now(backend)
        ttl = self.ttl
        if self.ttl_jitter:
            ttl *= 1.0 - self.ttl_jitter * random.random()  # noqa: S311
        entry = Entry(
            value, generation, now + ttl, now + ttl + self.stale_ttl, max(0.0, now - started)
        )
        if backend.stores_bytes:
            framed = pack(entry, self.serializer, payload, backend.compress_over)
            return entry, framed, ttl + self.stale_ttl
        return entry, entry, ttl + self.stale_ttl

    def remember(self, backend: CacheBackend, key: str, entry: Entry) -> None:
        """Hand a freshly stored entry to a two-tier backend's local tier."""
        remember = getattr(backend, "remember", None)
        if remember is not None:
            remember(self.prefix, key, entry)

    # -- sync -----------------------------------------------------------------------------------

    def lookup(
        self, backend: CacheBackend, key: str, *, quiet: bool = False
    ) -> tuple[Entry | None, int | None]:
        try:
            raw, generation = backend.get(self.prefix, key)
        except Exception as error:
            self.failed(error, "reading")
            return _MISS
        return self.read(backend, key, raw, generation, quiet=quiet), generation

    def store(
        self,
        backend: CacheBackend,
        key: str,
        value: Any,
        *,
        generation: int | None,
        started: float,
        token: str | None = None,
    ) -> None:
        payload = self.encode(value)
        if payload is None or generation is None:
            return
        entry, stored, ttl = self.stored(backend, value, payload, generation, started)
        try:
            if token is None:
                backend.set(self.prefix, key, stored, ttl)
            else:
                backend.set_fenced(self.prefix, key, stored, ttl, token)  # type: ignore[attr-defined]
        except Exception as error:
            self.failed(error, "writing")
            return
        self.remember(backend, key, entry)

    def fill(
        self,
        backend: CacheBackend,
        key: str,
        entry: Entry | None,
        generation: int | None,
        call: Call,
    ) -> Any:
        """Everything but a fresh hit: serve stale, join a flight, or compute."""
        counters = self.counters
        if not self.lock:
            next(counters.misses)
            return self.compute(backend, key, generation, call)
        flights = self.flights
        with self.flights_lock:
            mine = _Flight()
            flight = flights.setdefault(key, mine)
            leader = flight is mine
        if not leader:
            if entry is not None:  # stale (or refreshing early): someone is on it
                next(counters.stale if self.now(backend) >= entry.fresh_until else counters.hits)
                return entry.value
            next(counters.misses)
            next(counters.lock_waits)
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.value is _ABANDONED:
                return self.fill(backend, key, None, generation, call)
            return flight.value
        try:
            if entry is None and generation is not None:
                # Another thread may have stored it between our lookup and our lead.
                entry, generation = self.lookup(backend, key, quiet=True)
                entry = self.usable(backend, entry)
                if entry is not None and self.now(backend) < entry.fresh_until:
                    next(counters.hits)
                    flight.value = entry.value
                    return entry.value
            next(counters.misses)
            flight.value = self.leased(backend, key, entry, generation, call)
            return flight.value
        except Exception as error:
            flight.error = error
            raise
        finally:
            with self.flights_lock:
                del flights[key]
            flight.done.set()

    def leased(
        self,
        backend: CacheBackend,
        key: str,
        entry: Entry | None,
        generation: int | None,
        call: Call,
    ) -> Any:
        """Compute under the backend's cross-process lease when it has one."""
        acquire = getattr(backend, "acquire", None)
        if acquire is None or generation is None:
            return self.compute(backend, key, generation, call)
        try:
            token = acquire(self.prefix, key)
        except Exception as error:
            self.failed(error, "taking the lease")
            return self.compute(backend, key, generation, call)
        if token is not None:
            return self.compute(backend, key, generation, call, token=token)
        if entry is not None:  # another process refreshes: serve what we have
            next(self.counters.stale)
            return entry.value
        next(self.counters.lock_waits)
        deadline = time.monotonic() + backend.lock_wait  # type: ignore[attr-defined]
        while time.monotonic() < deadline:
            time.sleep(_POLL)
            found, generation = self.lookup(backend, key)
            if found is not None and self.now(backend) < found.fresh_until:
                return found.value
            if generation is None:
                break
        return self.compute(backend, key, generation, call)

    def compute(
        self,
        backend: CacheBackend,
        key: str,
        generation: int | None,
        call: Call,
        *,
        token: str | None = None,
    ) -> Any:
        started = self.now(backend)
        value = self.fn(*call[0], **call[1])
        self.store(backend, key, value, generation=generation, started=started, token=token)
        return value

    # -- async ----------------------------------------------------------------------------------

    async def alookup(
        self, backend: CacheBackend, key: str, *, quiet: bool = False
    ) -> tuple[Entry | None, int | None]:
        try:
            if backend.native_async:
                raw, generation = await backend.aget(self.prefix, key)  # type: ignore[attr-defined]
            else:
                raw, generation = backend.get(self.prefix, key)
        except Exception as error:
            self.failed(error, "reading")
            return _MISS
        return self.read(backend, key, raw, generation, quiet=quiet), generation

    async def astore(
        self,
        backend: CacheBackend,
        key: str,
        value: Any,
        *,
        generation: int | None,
        started: float,
        token: str | None = None,
    ) -> None:
        payload = self.encode(value)
        if payload is None or generation is None:
            return
        entry, stored, ttl = self.stored(backend, value, payload, generation, started)
        try:
            if not backend.native_async:  # a sync client: the lease was taken with it too
                if token is None:
                    backend.set(self.prefix, key, stored, ttl)
                else:
                    backend.set_fenced(self.prefix, key, stored, ttl, token)  # type: ignore[attr-defined]
            elif token is None:
                await backend.aset(self.prefix, key, stored, ttl)  # type: ignore[attr-defined]
            else:
                await backend.aset_fenced(self.prefix, key, stored, ttl, token)  # type: ignore[attr-defined]
        except Exception as error:
            self.failed(error, "writing")
            return
        self.remember(backend, key, entry)

    async def afill(
        self,
        backend: CacheBackend,
        key: str,
        entry: Entry | None,
        generation: int | None,
        call: Call,
    ) -> Any:
        counters = self.counters
        if not self.lock:
            next(counters.misses)
            return await self.acompute(backend, key, generation, call)
        loop = asyncio.get_running_loop()
        tasks = self.tasks
        mine: asyncio.Future[Any] = loop.create_future()
        future = tasks.setdefault(key, mine)
        if future is not mine:
            if future.get_loop() is not loop:
                # Another loop's flight (another thread): not ours to await.
                next(counters.misses)
                return await self.acompute(backend, key, generation, call)
            if entry is not None:
                next(counters.stale if self.now(backend) >= entry.fresh_until else counters.hits)
                return entry.value
            next(counters.misses)
            next(counters.lock_waits)
            value = await asyncio.shield(future)
            if value is _ABANDONED:
                return await self.afill(backend, key, None, generation, call)
            return value
        future = mine
        try:
            if entry is None and generation is not None:
                entry, generation = await self.alookup(backend, key, quiet=True)
                entry = self.usable(backend, entry)
                if entry is not None and self.now(backend) < entry.fresh_until:
                    next(counters.hits)
                    future.set_result(entry.value)
                    return entry.value
            next(counters.misses)
            value = await self.aleased(backend, key, entry, generation, call)
            future.set_result(value)
            return value
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: the waiters re-raise it, nobody must log it
            raise
        finally:
            if not future.done():
                future.set_result(_ABANDONED)  # cancelled: a waiter takes over
            if tasks.get(key) is future:
                del tasks[key]

    async def aleased(
        self,
        backend: CacheBackend,
        key: str,
        entry: Entry | None,
        generation: int | None,
        call: Call,
    ) -> Any:
        acquire = getattr(backend, "aacquire", None) if backend.native_async else None
        if acquire is None and not backend.native_async:
            acquire = getattr(backend, "acquire", None)
        if acquire is None or generation is None:
            return await self.acompute(backend, key, generation, call)
        try:
            token = acquire(self.prefix, key)
            if backend.native_async:
                token = await token
        except Exception as error:
            self.failed(error, "taking the lease")
            return await self.acompute(backend, key, generation, call)
        if token is not None:
            return await self.acompute(backend, key, generation, call, token=token)
        if entry is not None:
            next(self.counters.stale)
            return entry.value
        next(self.counters.lock_waits)
        deadline = time.monotonic() + backend.lock_wait  # type: ignore[attr-defined]
        while time.monotonic() < deadline:
            await asyncio.sleep(_POLL)
            found, generation = await self.alookup(backend, key)
            if found is not None and self.now(backend) < found.fresh_until:
                return found.value
            if generation is None:
                break
        return await self.acompute(backend, key, generation, call)

    async def acompute(
        self,
        backend: CacheBackend,
        key: str,
        generation: int | None,
        call: Call,
        *,
        token: str | None = None,
    ) -> Any:
        started = self.now(backend)
        value = await self.fn(*call[0], **call[1])
        await self.astore(backend, key, value, generation=generation, started=started, token=token)
        return value
