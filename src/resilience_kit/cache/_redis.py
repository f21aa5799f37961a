"""The Redis backend: one round trip per hit, leases across processes, a breaker around it all."""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from resilience_kit import clock as _clock_module
from resilience_kit._validation import check_int, check_number
from resilience_kit.breaker import CircuitBreaker
from resilience_kit.cache._frame import Entry, generation_of, pack, unpack
from resilience_kit.cache._keys import check_name, escape_glob, text_key
from resilience_kit.cache._redis_clients import RedisClients
from resilience_kit.cache._scripts import FENCED_SET, READ, no_script_error
from resilience_kit.cache._stats import counters_for
from resilience_kit.cache.serializers import JsonSerializer, Serializer

__all__ = ["RedisBackend"]

_READ_SHA = READ.sha
_TWO_KEYS = b"2"  # as bytes: redis-py encodes every other argument in Python, per call
_numbers = itertools.count(1)
_JSON = JsonSerializer()
_INFO_FIELDS = ("used_memory_human", "keyspace_hits", "keyspace_misses", "connected_clients")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisBackend:
    """Entries in Redis (or a Redis Cluster), shared by every process; fail-open.

    Give it a redis-py client (sync ``redis.Redis``/``RedisCluster`` or ``redis.asyncio``
    ones; it is used as it is, never reconfigured) or a URL, from which it builds a sync client
    and, per event loop, an asyncio one, both with short socket timeouts and no command retries
    of their own: the breaker does that job. One backend then serves `def` and `async def`
    functions alike.

    A hit is one round trip: one ``EVALSHA`` of a read-only script that reads the entry and
    its prefix's generation and answers the entry alone when it is current. Every
    operation runs through a [CircuitBreaker][resilience_kit.CircuitBreaker]: after a few
    failures in a row it stops calling Redis for ``recovery_timeout`` seconds, so an outage
    costs a cached call next to nothing (it runs the function, as on a miss), and caching
    resumes by itself once a trial call succeeds. On a miss, a lease (``SET NX PX`` with a
    random fencing token) lets one process compute while the others wait for its result (up
    to ``lock_wait``) or serve a stale value; the result is written only if the lease is still
    its own or free, and the lease is released in the same script.

    Args:
        client_or_url: A redis-py client, or a ``redis://``/``rediss://``/``unix://`` URL.
        namespace: The first part of every key (letters, digits, ``_ . - /``, single ``:``).
        compress_over: Payloads above this many bytes are zlib-compressed (None: never).
        lock_timeout: Seconds a miss's lease lasts (the longest a computation is protected).
        lock_wait: Seconds another process waits for the lease holder's value before it
            computes itself (default: ``lock_timeout``).
        socket_timeout: For clients built from a URL: connect and command timeout, seconds.
        breaker: The breaker around Redis; by default one of its own (3 failures in a row
            open it for 5 seconds; a full connection pool is a miss but not a failure of
            Redis's), registered as ``cache.redis:<namespace>#<n>``.

    Raises:
        ConfigurationError: A value is out of range, or ``client_or_url`` is neither, or it
            decodes responses to str (``decode_responses=True``: entries are bytes).
    """

    shared = True
    stores_bytes = True
    peek = None

    def __init__(
        self,
        client_or_url: Any,
        namespace: str = "rk",
        *,
        compress_over: int | None = 1024,
        lock_timeout: float = 10.0,
        lock_wait: float | None = None,
        socket_timeout: float = 0.25,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.namespace = check_name("namespace", namespace)
        self.compress_over = (
            None if compress_over is None else check_int("compress_over", compress_over, minimum=0)
        )
        self.lock_timeout = check_number(
            "lock_timeout", lock_timeout, minimum=0, min_inclusive=False
        )
        self.lock_wait = (
            self.lock_timeout
            if lock_wait is None
            else check_number("lock_wait", lock_wait, minimum=0)
        )
        timeout = check_number("socket_timeout", socket_timeout, minimum=0, min_inclusive=False)
        self._clients = clients = RedisClients(client_or_url, timeout)
        self.native_async = clients.native_async
        self.sync_capable = clients.sync_capable
        self._prefix = namespace + ":"
        self._generation_keys: dict[str, str] = {}
        self._read_keys: dict[str, bytes] = {}  # the generation keys, encoded
        self._no_script = no_script_error()
        self._pool_full = clients.pool_full
        self.breaker = breaker or CircuitBreaker(
            f"cache.redis:{namespace}#{next(_numbers)}",
            failure_threshold=3,
            recovery_timeout=5.0,
            ignore=self._pool_full,
        )
        guard = self.breaker
        self._read = guard(self._raw_read)
        self._aread = guard(self._raw_aread)
        self._mget = guard(self._raw_mget)
        self._amget = guard(self._raw_amget)
        self._command = guard(clients.command)
        self._acommand = guard(clients.acommand)

    # -- clients --------------------------------------------------------------------------------

    def sync_client(self) -> Any:
        """The sync client in use (built from the URL on first use)."""
        return self._clients.sync_client()

    def async_client(self) -> Any:
        """The asyncio client for the running loop (built from the URL once per loop)."""
        return self._clients.async_client()

    def _raw_read(self, generation_key: bytes, full: bytes) -> tuple[Any, int]:
        # READ.run(), inlined: this is a hit's whole cost on our side.
        clients = self._clients
        client = clients.client
        if client is None:
            client = clients.sync_client()
        try:
            reply = client.execute_command("EVALSHA", _READ_SHA, _TWO_KEYS, generation_key, full)
        except self._no_script:  # a restarted or flushed server, a new Cluster node: load it
            reply = client.execute_command("EVAL", READ.source, _TWO_KEYS, generation_key, full)
        except self._pool_full:  # a burst of callers: wait for a connection, not a miss
            keys = (generation_key, full)
            reply = clients.patiently(lambda client: READ.run(client, self._no_script, keys))
        if type(reply) is bytes:
            return reply, generation_of(reply)
        generation, raw = reply
        return raw, int(generation)

    async def _raw_aread(self, generation_key: bytes, full: bytes) -> tuple[Any, int]:
        clients = self._clients
        client = clients.given_async or clients.async_client()
        try:
            reply = await client.execute_command(
                "EVALSHA", _READ_SHA, _TWO_KEYS, generation_key, full
            )
        except self._no_script:
            reply = await client.execute_command(
                "EVAL", READ.source, _TWO_KEYS, generation_key, full
            )
        except self._pool_full:
            keys = (generation_key, full)
            reply = await clients.apatiently(
                lambda client: READ.arun(client, self._no_script, keys)
            )
        if type(reply) is bytes:
            return reply, generation_of(reply)
        generation, raw = reply
        return raw, int(generation)

    def _raw_mget(self, keys: list[str]) -> list[Any]:
        # execute_command, not mget(): the same MGET without redis-py's argument juggling.
        result: list[Any] = self._clients.command(
            lambda client: client.execute_command("MGET", *keys)
        )
        return result

    async def _raw_amget(self, keys: list[str]) -> list[Any]:
        result: list[Any] = await self._clients.acommand(
            lambda client: client.execute_command("MGET", *keys)
        )
        return result

    # -- keys -----------------------------------------------------------------------------------

    def generation_key(self, scope: str) -> str:
        """The key holding ``scope``'s generation (in the prefix's hash slot)."""
        found = self._generation_keys.get(scope)
        if found is None:
            found = self._generation_keys[scope] = f"{self._prefix}{{{scope}}}:#gen"
        return found

    def _read_key(self, scope: str) -> bytes:
        found = self._read_keys[scope] = self.generation_key(scope).encode()
        return found

    def full_key(self, key: str) -> str:
        """The Redis key of a cache key: ``{namespace}:{prefix}:...:{digest}``."""
        return self._prefix + key

    # -- the backend protocol, sync -------------------------------------------------------------

    def get(self, scope: str, key: str) -> tuple[Any, int]:
        """The entry's bytes (or None) and ``scope``'s generation: one round trip.

        One ``EVALSHA`` of a read-only script that answers the entry alone when it belongs to
        the prefix's current generation (the usual hit: a single bulk reply, as cheap to parse
        as a ``GET``'s), else the generation and whatever is stored (``EVAL`` once more if
        the server has lost the script).
        """
        generation_key = self._read_keys.get(scope) or self._read_key(scope)
        read: tuple[Any, int] = self._read(generation_key, (self._prefix + key).encode())
        return read

    def set(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        """``SET key stored PX ttl``."""
        full = self._prefix + key
        self._command(lambda client: client.set(full, stored, px=_ms(ttl)))

    def delete(self, scope: str, key: str) -> None:
        """``DEL key``."""
        full = self._prefix + key
        self._command(lambda client: client.delete(full))

    def bump(self, scope: str) -> None:
        """``INCR`` the prefix's generation: every older entry stops counting."""
        generation = self.generation_key(scope)
        self._command(lambda client: client.incr(generation))

    def delete_matching(self, scope: str, pattern: str) -> int:
        """``SCAN`` for ``pattern`` inside the namespace, ``UNLINK`` in batches."""
        match = escape_glob(self._prefix) + pattern

        def run(client: Any) -> int:
            found = list(client.scan_iter(match=match, count=500))
            for start in range(0, len(found), 500):
                client.unlink(*found[start : start + 500])
            return len(found)

        deleted: int = self._command(run)
        return deleted

    def acquire(self, scope: str, key: str) -> str | None:
        """Take the lease on ``key``: its fencing token, or None if another holds it."""
        token = os.urandom(12).hex()
        lease = self._prefix + key + "#lease"
        taken = self._command(
            lambda client: client.set(lease, token, nx=True, px=_ms(self.lock_timeout))
        )
        return token if taken else None

    def set_fenced(self, scope: str, key: str, stored: Any, ttl: float, token: str) -> bool:
        """Store and release, if the lease is still ``token``'s (or free); else store nothing."""
        return self._fenced_write(key, stored, ttl, token)

    def _fenced_write(self, key: str, stored: Any, ttl: float, token: str, *publish: str) -> bool:
        # set_fenced, and when it stores, PUBLISH publish[0] publish[1] in the same script
        # (a two-tier write).
        full = self._prefix + key
        keys = (full + "#lease", full)
        missing = self._no_script

        def run(client: Any) -> Any:
            return FENCED_SET.run(client, missing, keys, token, stored, _ms(ttl), *publish)

        return bool(self._command(run))

    def info(self) -> dict[str, Any]:
        """Server figures: ``used_memory_human``, ``total_keys``, ``keyspace_hits``,
        ``keyspace_misses``, ``connected_clients`` (summed over a Cluster's nodes)."""

        def run(client: Any) -> Any:
            every = _everywhere(client)
            return client.info(**every), client.dbsize(**every)

        return _server_info(*self._command(run))

    # -- async twins ----------------------------------------------------------------------------

    def aget(self, scope: str, key: str) -> Awaitable[tuple[Any, int]]:
        """[get][resilience_kit.cache.RedisBackend.get], awaitable."""
        generation_key = self._read_keys.get(scope) or self._read_key(scope)
        read: Awaitable[tuple[Any, int]] = self._aread(
            generation_key, (self._prefix + key).encode()
        )
        return read

    async def aset(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        """[set][resilience_kit.cache.RedisBackend.set], awaitable."""
        full = self._prefix + key
        await self._acommand(lambda client: client.set(full, stored, px=_ms(ttl)))

    async def adelete(self, scope: str, key: str) -> None:
        """[delete][resilience_kit.cache.RedisBackend.delete], awaitable."""
        full = self._prefix + key
        await self._acommand(lambda client: client.delete(full))

    async def abump(self, scope: str) -> None:
        """[bump][resilience_kit.cache.RedisBackend.bump], awaitable."""
        generation = self.generation_key(scope)
        await self._acommand(lambda client: client.incr(generation))

    async def adelete_matching(self, scope: str, pattern: str) -> int:
        """[delete_matching][resilience_kit.cache.RedisBackend.delete_matching], awaitable."""
        match = escape_glob(self._prefix) + pattern

        async def run(client: Any) -> int:
            found = [key async for key in client.scan_iter(match=match, count=500)]
            for start in range(0, len(found), 500):
                await client.unlink(*found[start : start + 500])
            return len(found)

        deleted: int = await self._acommand(run)
        return deleted

    async def aacquire(self, scope: str, key: str) -> str | None:
        """[acquire][resilience_kit.cache.RedisBackend.acquire], awaitable."""
        token = os.urandom(12).hex()
        lease = self._prefix + key + "#lease"
        taken = await self._acommand(
            lambda client: client.set(lease, token, nx=True, px=_ms(self.lock_timeout))
        )
        return token if taken else None

    async def aset_fenced(self, scope: str, key: str, stored: Any, ttl: float, token: str) -> bool:
        """[set_fenced][resilience_kit.cache.RedisBackend.set_fenced], awaitable."""
        return await self._afenced_write(key, stored, ttl, token)

    async def _afenced_write(
        self, key: str, stored: Any, ttl: float, token: str, *publish: str
    ) -> bool:
        full = self._prefix + key
        keys = (full + "#lease", full)
        missing = self._no_script

        async def run(client: Any) -> Any:
            return await FENCED_SET.arun(client, missing, keys, token, stored, _ms(ttl), *publish)

        return bool(await self._acommand(run))

    async def ainfo(self) -> dict[str, Any]:
        """[info][resilience_kit.cache.RedisBackend.info], awaitable (with only a sync client,
        it is called as it is)."""
        if not self.native_async:
            return self.info()

        async def run(client: Any) -> Any:
            every = _everywhere(client)
            return await client.info(**every), await client.dbsize(**every)

        return _server_info(*(await self._acommand(run)))

    # -- batches --------------------------------------------------------------------------------

    def get_many(
        self, prefix: str, keys: Iterable[str], *, serializer: Serializer | None = None
    ) -> dict[str, Any]:
        """The fresh cached values of ``keys`` under ``prefix``: one ``MGET``.

        Keys are the ones ``@cached(prefix, key=...)`` makes from these texts, so a batch
        reads (and [set_many][resilience_kit.cache.RedisBackend.set_many] writes) the same
        entries as the decorated function. Absent entries, entries of an older generation and
        entries past their ttl are left out: past its ttl an entry is a miss here even while
        ``stale_ttl`` lets the decorated function serve it (there one caller refreshes it; a
        batch read would keep it stale). A failure or a corrupt entry is a miss (counted).
        """
        wanted = list(keys)
        full = [self._prefix + text_key(prefix, text) for text in wanted]
        try:
            generation, *raws = self._mget([self.generation_key(prefix), *full])
        except Exception:
            next(counters_for(prefix).errors)
            return {}
        return self._decoded(prefix, wanted, generation, raws, serializer or _JSON)

    def set_many(
        self,
        prefix: str,
        items: Mapping[str, Any],
        ttl: float,
        *,
        serializer: Serializer | None = None,
    ) -> None:
        """Store every value of ``items`` under ``prefix`` for ``ttl`` seconds: one pipeline.

        Raises:
            TypeError: A value cannot be encoded (nothing is stored).
        """
        payloads = self._payloads(items, serializer or _JSON)

        def run(client: Any) -> None:
            generation = int(client.get(self.generation_key(prefix)) or 0)
            pipe = client.pipeline(transaction=False)
            for key, stored in self._framed(prefix, payloads, ttl, generation, serializer):
                pipe.set(key, stored, px=_ms(ttl))
            pipe.execute()

        try:
            self._command(run)
        except Exception:
            next(counters_for(prefix).errors)

    async def aget_many(
        self, prefix: str, keys: Iterable[str], *, serializer: Serializer | None = None
    ) -> dict[str, Any]:
        """[get_many][resilience_kit.cache.RedisBackend.get_many], awaitable (with only a sync
        client, it is called as it is)."""
        if not self.native_async:
            return self.get_many(prefix, keys, serializer=serializer)
        wanted = list(keys)
        full = [self._prefix + text_key(prefix, text) for text in wanted]
        try:
            generation, *raws = await self._amget([self.generation_key(prefix), *full])
        except Exception:
            next(counters_for(prefix).errors)
            return {}
        return self._decoded(prefix, wanted, generation, raws, serializer or _JSON)

    async def aset_many(
        self,
        prefix: str,
        items: Mapping[str, Any],
        ttl: float,
        *,
        serializer: Serializer | None = None,
    ) -> None:
        """[set_many][resilience_kit.cache.RedisBackend.set_many], awaitable (with only a sync
        client, it is called as it is)."""
        if not self.native_async:
            return self.set_many(prefix, items, ttl, serializer=serializer)
        payloads = self._payloads(items, serializer or _JSON)

        async def run(client: Any) -> None:
            generation = int(await client.get(self.generation_key(prefix)) or 0)
            pipe = client.pipeline(transaction=False)
            for key, stored in self._framed(prefix, payloads, ttl, generation, serializer):
                pipe.set(key, stored, px=_ms(ttl))
            await pipe.execute()

        try:
            await self._acommand(run)
        except Exception:
            next(counters_for(prefix).errors)

    def _payloads(
        self, items: Mapping[str, Any], serializer: Serializer
    ) -> list[tuple[str, Any, bytes]]:
        return [(text, value, serializer.dumps(value)) for text, value in items.items()]

    def _framed(
        self,
        prefix: str,
        payloads: list[tuple[str, Any, bytes]],
        ttl: float,
        generation: int,
        serializer: Serializer | None,
    ) -> Iterable[tuple[str, bytes]]:
        now = _clock_module._default.wall()
        chosen = serializer or _JSON
        for text, value, payload in payloads:
            entry = Entry(value, generation, now + ttl, now + ttl, 0.0)
            yield (
                self._prefix + text_key(prefix, text),
                pack(entry, chosen, payload, self.compress_over),
            )

    def _decoded(
        self,
        prefix: str,
        wanted: list[str],
        generation: Any,
        raws: list[Any],
        serializer: Serializer,
    ) -> dict[str, Any]:
        current = int(generation) if generation else 0
        now = _clock_module._default.wall()
        found: dict[str, Any] = {}
        for text, raw in zip(wanted, raws, strict=True):
            if raw is None:
                continue
            try:
                entry = unpack(raw, serializer)
            except ValueError:
                next(counters_for(prefix).errors)
                continue
            if entry.generation == current and now < entry.fresh_until:
                found[text] = entry.value
        return found

    def close(self) -> None:
        """Close the sync client this backend built from a URL (a client passed in is yours)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the clients this backend built from a URL, the running loop's included."""
        await self._clients.aclose()

    def __repr__(self) -> str:
        clients = self._clients
        where = clients.url or repr(clients.client or clients.given_async)
        return f"RedisBackend({where!r}, namespace={self.namespace!r})"


def _everywhere(client: Any) -> dict[str, Any]:
    """For a Cluster client, the option that sends a command to every primary."""
    primaries = getattr(client, "PRIMARIES", None)
    return {} if primaries is None else {"target_nodes": primaries}


def _server_info(info: Any, size: Any) -> dict[str, Any]:
    if info and all(isinstance(v, dict) for v in info.values()):  # a Cluster: one per node
        nodes = list(info.values())
        merged: dict[str, Any] = {
            name: sum(int(node.get(name, 0)) for node in nodes)
            for name in ("keyspace_hits", "keyspace_misses", "connected_clients")
        }
        merged["used_memory_human"] = ", ".join(str(n.get("used_memory_human")) for n in nodes)
    else:
        merged = {name: info.get(name) for name in _INFO_FIELDS}
    total = sum(size.values()) if isinstance(size, dict) else int(size)
    merged["total_keys"] = total
    hits, misses = merged.get("keyspace_hits") or 0, merged.get("keyspace_misses") or 0
    merged["hit_rate"] = round(100.0 * hits / (hits + misses), 2) if hits + misses else 0.0
    merged["backend"] = "redis"
    return merged
