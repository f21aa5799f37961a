"""Two tiers: a small in-process L1 in front of Redis, kept coherent by pub/sub messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from resilience_kit._validation import check_int
from resilience_kit.cache._frame import Entry
from resilience_kit.cache._keys import check_name, text_key
from resilience_kit.cache._memory import MemoryBackend
from resilience_kit.cache._redis import RedisBackend
from resilience_kit.cache._scripts import BUMP_PUBLISH, DELETE_PUBLISH, SET_PUBLISH
from resilience_kit.cache._stats import counters_for
from resilience_kit.cache.serializers import Serializer
from resilience_kit.errors import ConfigurationError

__all__ = ["TieredBackend"]

_logger = logging.getLogger("resilience_kit.cache")
_READS_LIMIT = 10_000


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class TieredBackend:
    """A [RedisBackend][resilience_kit.cache.RedisBackend] with an in-process L1 in front.

    A hit on a hot key never leaves the process: the decoded entry is kept in a bounded
    [MemoryBackend][resilience_kit.cache.MemoryBackend]; an `async def`'s L1 hit never awaits.
    Every process subscribes to one pub/sub channel; each write, delete, prefix invalidation
    and pattern invalidation publishes a message there (in the same script as the write, so
    one round trip, on a single Redis or a Cluster), and every other process drops what it
    holds (within milliseconds). While the subscription is down (Redis unreachable,
    reconnecting) the L1 is emptied and bypassed, so it can never serve what another process
    invalidated meanwhile; it fills again once the listener is back.

    The listener is a thread when ``remote`` has a sync client or a URL. With an asyncio-only
    ``remote`` (a ``redis.asyncio`` client, Cluster or not) it is a task on the event loop
    that uses the cache: started here if a loop is running, else by the first async call
    (until it has subscribed, calls read Redis). On a Cluster, ``PUBLISH`` reaches every node,
    so the listener may subscribe on any of them.

    Args:
        remote: The Redis tier.
        max_entries: The L1's bound (>= 1).
        channel: The pub/sub channel (default ``{namespace}:cache-invalidation``); processes that
            share a cache must share it.

    Raises:
        ConfigurationError: A value is out of range, or ``remote`` is not a RedisBackend.
    """

    shared = True
    stores_bytes = True

    def __init__(
        self, remote: RedisBackend, *, max_entries: int = 1_000, channel: str | None = None
    ) -> None:
        if not isinstance(remote, RedisBackend):
            raise ConfigurationError(
                f"remote must be a RedisBackend, got {remote!r}", parameter="remote", value=remote
            )
        self.remote = remote
        self.local = MemoryBackend(check_int("max_entries", max_entries, minimum=1))
        self._data = self.local._data
        self.channel = check_name("channel", channel or f"{remote.namespace}:cache-invalidation")
        self.native_async = remote.native_async
        self.sync_capable = remote.sync_capable
        self.compress_over = remote.compress_over
        self.lock_wait = remote.lock_wait
        self._sender = os.urandom(8).hex()
        self._missing = remote._no_script
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self._reads: dict[str, int] = {}
        self._live = threading.Event()
        self._up = False  # mirrors _live, read on the hot path without a call
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        if remote.sync_capable:
            self._listener = threading.Thread(
                target=self._listen, name=f"rk-cache-l1:{self.channel}", daemon=True
            )
            self._listener.start()
        else:
            with contextlib.suppress(RuntimeError):  # no running loop: the first call starts it
                self._start_task()

    # -- reads ----------------------------------------------------------------------------------

    def peek(self, scope: str, key: str) -> tuple[Entry, int] | None:
        """The L1's current entry and its generation, or None: no I/O (an async hit's path)."""
        if not self._up:
            return None
        known = self._generations.get(scope)
        data = self._data
        entry = data.get(key)
        if entry is not None and entry.generation == known:
            try:  # noqa: SIM105 - the hot path: suppress() costs more than the lookup
                data.move_to_end(key)
            except KeyError:  # dropped by the listener meanwhile: the entry read stays valid
                pass
            return entry, known
        return None

    def _mark(self, key: str) -> None:
        """Note the epoch before a read from Redis: an invalidation after it bars the result."""
        reads = self._reads
        if len(reads) > _READS_LIMIT:
            reads.clear()
        reads[key] = self._epoch

    def _learn(self, scope: str, generation: int) -> None:
        if self._up and generation > self._generations.get(scope, -1):
            self._generations[scope] = generation

    def get(self, scope: str, key: str) -> tuple[Any, int]:
        """The L1's entry if it holds a current one, else Redis's (one round trip)."""
        found = self.peek(scope, key)
        if found is not None:
            return found
        self._mark(key)
        raw, generation = self.remote.get(scope, key)
        self._learn(scope, generation)
        return raw, generation

    async def aget(self, scope: str, key: str) -> tuple[Any, int]:
        """[get][resilience_kit.cache.TieredBackend.get], awaitable."""
        found = self.peek(scope, key)
        if found is not None:
            return found
        if not self._up and self._listener is None:
            self._start_task()
        self._mark(key)
        raw, generation = await self.remote.aget(scope, key)
        self._learn(scope, generation)
        return raw, generation

    def remember(self, scope: str, key: str, entry: Entry) -> None:
        """Keep a decoded entry in the L1, unless an invalidation arrived since it was read."""
        read_at = self._reads.pop(key, -1)
        if self._up and read_at == self._epoch and self._generations.get(scope) == entry.generation:
            self.local.set(scope, key, entry, 0.0)

    # -- writes: Redis and the message in one script, then this process's own L1 ------------

    def _message(self, operation: str, payload: str) -> str:
        return f"{self._sender}|{operation}|{payload}"

    def set(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        """Store in Redis and tell the other processes to drop their copy: one round trip."""
        keys = (self.remote.full_key(key),)
        args = (stored, _ms(ttl), self.channel, self._message("del", key))
        self.remote._command(lambda client: SET_PUBLISH.run(client, self._missing, keys, *args))

    async def aset(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        """[set][resilience_kit.cache.TieredBackend.set], awaitable."""
        keys = (self.remote.full_key(key),)
        args = (stored, _ms(ttl), self.channel, self._message("del", key))

        async def run(client: Any) -> Any:
            return await SET_PUBLISH.arun(client, self._missing, keys, *args)

        await self.remote._acommand(run)

    def acquire(self, scope: str, key: str) -> str | None:
        """The Redis tier's lease."""
        return self.remote.acquire(scope, key)

    async def aacquire(self, scope: str, key: str) -> str | None:
        """The Redis tier's lease, awaitable."""
        return await self.remote.aacquire(scope, key)

    def set_fenced(self, scope: str, key: str, stored: Any, ttl: float, token: str) -> bool:
        """The Redis tier's fenced write, with the message in the same script."""
        message = self._message("del", key)
        return self.remote._fenced_write(key, stored, ttl, token, self.channel, message)

    async def aset_fenced(self, scope: str, key: str, stored: Any, ttl: float, token: str) -> bool:
        """[set_fenced][resilience_kit.cache.TieredBackend.set_fenced], awaitable."""
        message = self._message("del", key)
        return await self.remote._afenced_write(key, stored, ttl, token, self.channel, message)

    def delete(self, scope: str, key: str) -> None:
        """Delete everywhere: this L1, Redis, and (by message) the other processes' L1s."""
        self._apply_delete(key)
        keys = (self.remote.full_key(key),)
        args = (self.channel, self._message("del", key))
        self.remote._command(lambda client: DELETE_PUBLISH.run(client, self._missing, keys, *args))
        self._apply_delete(key)  # and whatever a reader here fetched meanwhile

    async def adelete(self, scope: str, key: str) -> None:
        """[delete][resilience_kit.cache.TieredBackend.delete], awaitable."""
        self._apply_delete(key)
        keys = (self.remote.full_key(key),)
        args = (self.channel, self._message("del", key))

        async def run(client: Any) -> Any:
            return await DELETE_PUBLISH.arun(client, self._missing, keys, *args)

        await self.remote._acommand(run)
        self._apply_delete(key)

    def bump(self, scope: str) -> None:
        """Invalidate the prefix in Redis and in every process: one round trip."""
        keys = (self.remote.generation_key(scope),)
        args = (self.channel, self._message("gen", scope) + "|")
        new = self.remote._command(
            lambda client: BUMP_PUBLISH.run(client, self._missing, keys, *args)
        )
        self._apply_generation(scope, int(new))

    async def abump(self, scope: str) -> None:
        """[bump][resilience_kit.cache.TieredBackend.bump], awaitable."""
        keys = (self.remote.generation_key(scope),)
        args = (self.channel, self._message("gen", scope) + "|")

        async def run(client: Any) -> Any:
            return await BUMP_PUBLISH.arun(client, self._missing, keys, *args)

        self._apply_generation(scope, int(await self.remote._acommand(run)))

    def delete_matching(self, scope: str, pattern: str) -> int:
        """Delete matching entries in Redis and in every process's L1."""
        self._apply_pattern(pattern)
        deleted = self.remote.delete_matching(scope, pattern)
        message = self._message("pat", pattern)
        self.remote._command(lambda client: client.publish(self.channel, message))
        self._apply_pattern(pattern)
        return deleted

    async def adelete_matching(self, scope: str, pattern: str) -> int:
        """[delete_matching][resilience_kit.cache.TieredBackend.delete_matching], awaitable."""
        self._apply_pattern(pattern)
        deleted = await self.remote.adelete_matching(scope, pattern)
        message = self._message("pat", pattern)

        async def run(client: Any) -> Any:
            return await client.publish(self.channel, message)

        await self.remote._acommand(run)
        self._apply_pattern(pattern)
        return deleted

    # -- batches: Redis, then one message for every key written ---------------------------------

    def get_many(
        self, prefix: str, keys: Iterable[str], *, serializer: Serializer | None = None
    ) -> dict[str, Any]:
        """The Redis tier's [get_many][resilience_kit.cache.RedisBackend.get_many]: one ``MGET``,
        fresh entries only."""
        return self.remote.get_many(prefix, keys, serializer=serializer)

    async def aget_many(
        self, prefix: str, keys: Iterable[str], *, serializer: Serializer | None = None
    ) -> dict[str, Any]:
        """[get_many][resilience_kit.cache.TieredBackend.get_many], awaitable."""
        return await self.remote.aget_many(prefix, keys, serializer=serializer)

    def set_many(
        self,
        prefix: str,
        items: Mapping[str, Any],
        ttl: float,
        *,
        serializer: Serializer | None = None,
    ) -> None:
        """The Redis tier's [set_many][resilience_kit.cache.RedisBackend.set_many], then one
        message that makes every process drop its copies of those keys.

        Raises:
            TypeError: A value cannot be encoded (nothing is stored).
        """
        keys = [text_key(prefix, text) for text in items]
        self._drop_local(keys)
        self.remote.set_many(prefix, items, ttl, serializer=serializer)
        if keys:
            message = self._message("dels", "|".join(keys))  # keys never hold "|" (escaped)
            try:
                self.remote._command(lambda client: client.publish(self.channel, message))
            except Exception:
                next(counters_for(prefix).errors)
            self._drop_local(keys)  # and whatever a reader here fetched meanwhile

    async def aset_many(
        self,
        prefix: str,
        items: Mapping[str, Any],
        ttl: float,
        *,
        serializer: Serializer | None = None,
    ) -> None:
        """[set_many][resilience_kit.cache.TieredBackend.set_many], awaitable."""
        keys = [text_key(prefix, text) for text in items]
        self._drop_local(keys)
        await self.remote.aset_many(prefix, items, ttl, serializer=serializer)
        if keys:
            message = self._message("dels", "|".join(keys))

            async def run(client: Any) -> Any:
                return await client.publish(self.channel, message)

            try:
                await self.remote._acommand(run)
            except Exception:
                next(counters_for(prefix).errors)
            self._drop_local(keys)

    def _drop_local(self, keys: list[str]) -> None:
        """Drop ``keys`` from this L1, and bar reads in flight from keeping them."""
        for key in keys:
            self._apply_delete(key)

    def info(self) -> dict[str, Any]:
        """The Redis figures, plus ``local_keys`` and ``local_live`` (listener subscribed)."""
        figures = self.remote.info()
        figures.update(local_keys=self.local.size(), local_live=self._live.is_set())
        return figures

    async def ainfo(self) -> dict[str, Any]:
        """[info][resilience_kit.cache.TieredBackend.info], awaitable."""
        figures = await self.remote.ainfo()
        figures.update(local_keys=self.local.size(), local_live=self._live.is_set())
        return figures

    # -- the listener ---------------------------------------------------------------------------

    def _apply_delete(self, key: str) -> None:
        self._epoch += 1
        self.local.delete("", key)

    def _apply_generation(self, scope: str, generation: int) -> None:
        self._epoch += 1
        if generation > self._generations.get(scope, -1):
            self._generations[scope] = generation

    def _apply_pattern(self, pattern: str) -> None:
        self._epoch += 1
        self.local.delete_matching("", pattern)

    def _apply(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        sender, operation, payload = text.split("|", 2)  # a pattern may hold "|"
        if sender == self._sender:
            return
        if operation == "del":
            self._apply_delete(payload)
        elif operation == "gen":
            scope, _, generation = payload.rpartition("|")
            self._apply_generation(scope, int(generation))
        elif operation == "pat":
            self._apply_pattern(payload)
        elif operation == "dels":
            for key in payload.split("|"):
                self._apply_delete(key)

    def _on_message(self, message: Any) -> None:
        if message["type"] == "subscribe":
            self._drop_all()
            self._live.set()
            self._up = True
        elif message["type"] == "message":
            self._apply(message["data"])

    def _lost(self, error: BaseException) -> None:
        if self._live.is_set():
            _logger.warning(
                "cache L1 on %r: invalidation listener lost (%s); L1 bypassed until it is back",
                self.channel,
                error,
            )
        self._drop_all()

    def _drop_all(self) -> None:
        self._up = False
        self._live.clear()
        self._epoch += 1
        self.local.clear()
        self._generations.clear()

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self.remote.sync_client().pubsub()
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None:
                        self._on_message(message)
            except Exception as error:
                self._lost(error)
                self._stop.wait(0.5)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # the connection may be gone already
                        pubsub.close()
        self._drop_all()

    def _start_task(self) -> None:
        """Start the asyncio listener on the running loop (RuntimeError: none is running)."""
        loop = asyncio.get_running_loop()
        task = self._task
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        if self._stop.is_set():
            return
        self._task = loop.create_task(self._alisten(), name=f"rk-cache-l1:{self.channel}")

    async def _alisten(self) -> None:
        client = self.remote.async_client()
        try:
            while not self._stop.is_set():
                pubsub = None
                try:
                    await client.initialize()  # a Cluster client learns its slots first
                    pubsub = client.pubsub()
                    await pubsub.subscribe(self.channel)
                    while not self._stop.is_set():
                        message = await pubsub.get_message(timeout=0.2)
                        if message is not None:
                            self._on_message(message)
                except Exception as error:
                    self._lost(error)
                    await asyncio.sleep(0.5)
                finally:
                    if pubsub is not None:
                        with contextlib.suppress(Exception):
                            await pubsub.aclose()
        finally:
            self._drop_all()

    def wait_live(self, timeout: float = 5.0) -> bool:
        """Wait until the invalidation listener is subscribed (the L1 is in use).

        Blocks the thread: with an asyncio listener, await
        [await_live][resilience_kit.cache.TieredBackend.await_live] instead.
        """
        return self._live.wait(timeout)

    async def await_live(self, timeout: float = 5.0) -> bool:
        """Start the listener if need be and wait until it is subscribed, without blocking."""
        if self._listener is None:
            self._start_task()
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._live.is_set():
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def close(self) -> None:
        """Stop the listener and empty the L1 (the Redis tier stays open)."""
        self._stop.set()
        if self._listener is not None:
            self._listener.join(5)
        task = self._task
        if task is not None and not task.done():
            loop = task.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        self._drop_all()

    async def aclose(self) -> None:
        """[close][resilience_kit.cache.TieredBackend.close], and wait for an asyncio
        listener to finish."""
        self.close()
        task = self._task
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __repr__(self) -> str:
        return f"TieredBackend({self.remote!r}, max_entries={self.local.max_entries})"
