"""Two tiers: a small in-process L1 in front of Redis, kept coherent by pub/sub messages."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

from resilience_kit._validation import check_int
from resilience_kit.cache._frame import Entry
from resilience_kit.cache._keys import check_name
from resilience_kit.cache._memory import MemoryBackend
from resilience_kit.cache._redis import RedisBackend
from resilience_kit.errors import ConfigurationError

__all__ = ["TieredBackend"]

_logger = logging.getLogger("resilience_kit.cache")
_READS_LIMIT = 10_000


class TieredBackend:
    """A [RedisBackend][resilience_kit.cache.RedisBackend] with an in-process L1 in front.

    A hit on a hot key never leaves the process: the decoded entry is kept in a bounded
    [MemoryBackend][resilience_kit.cache.MemoryBackend]. Every process subscribes to one pub/sub
    channel; each write, delete, prefix invalidation and pattern invalidation publishes a
    message there, and every other process drops what it holds (within milliseconds). While the
    subscription is down (Redis unreachable, reconnecting) the L1 is emptied and bypassed, so
    it can never serve what another process invalidated meanwhile; it fills again once the
    listener is back.

    Args:
        remote: The Redis tier; it needs a sync client or a URL (the listener is a thread).
        max_entries: The L1's bound (>= 1).
        channel: The pub/sub channel (default ``{namespace}:cache-invalidation``); processes that
            share a cache must share it.

    Raises:
        ConfigurationError: A value is out of range, or ``remote`` has only an asyncio client.
    """

    shared = True
    stores_bytes = True

    def __init__(
        self, remote: RedisBackend, *, max_entries: int = 1_000, channel: str | None = None
    ) -> None:
        if not isinstance(remote, RedisBackend) or not remote.sync_capable:
            raise ConfigurationError(
                "remote must be a RedisBackend with a sync client or a URL (the invalidation "
                f"listener runs in a thread), got {remote!r}",
                parameter="remote",
                value=remote,
            )
        self.remote = remote
        self.local = MemoryBackend(check_int("max_entries", max_entries, minimum=1))
        self.channel = check_name("channel", channel or f"{remote.namespace}:cache-invalidation")
        self.native_async = remote.native_async
        self.sync_capable = True
        self.compress_over = remote.compress_over
        self.lock_wait = remote.lock_wait
        self._sender = os.urandom(8).hex()
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self._reads: dict[str, int] = {}
        self._live = threading.Event()
        self._up = False  # mirrors _live, read on the hot path without a call
        self._stop = threading.Event()
        self._listener = threading.Thread(
            target=self._listen, name=f"rk-cache-l1:{self.channel}", daemon=True
        )
        self._listener.start()

    # -- reads ----------------------------------------------------------------------------------

    def _local(self, scope: str, key: str) -> Entry | None:
        if not self._up:
            return None
        known = self._generations.get(scope)
        if known is None:
            return None
        data = self.local._data
        entry = data.get(key)
        if entry is not None and entry.generation == known:
            try:  # noqa: SIM105 - the hot path: suppress() costs more than the lookup
                data.move_to_end(key)
            except KeyError:  # dropped by the listener meanwhile: the entry read stays valid
                pass
            return entry
        reads = self._reads
        if len(reads) > _READS_LIMIT:
            reads.clear()
        reads[key] = self._epoch
        return None

    def peek(self, scope: str, key: str) -> tuple[Entry, int] | None:
        """The L1's current entry and its generation, or None: no I/O, for async callers."""
        entry = self._local(scope, key)
        return None if entry is None else (entry, entry.generation)

    def _learn(self, scope: str, generation: int) -> None:
        if self._up and generation > self._generations.get(scope, -1):
            self._generations[scope] = generation

    def get(self, scope: str, key: str) -> tuple[Any, int]:
        """The L1's entry if it holds a current one, else Redis's bytes (one ``MGET``)."""
        entry = self._local(scope, key)
        if entry is not None:
            return entry, entry.generation
        raw, generation = self.remote.get(scope, key)
        self._learn(scope, generation)
        return raw, generation

    async def aget(self, scope: str, key: str) -> tuple[Any, int]:
        """[get][resilience_kit.cache.TieredBackend.get], awaitable."""
        entry = self._local(scope, key)
        if entry is not None:
            return entry, entry.generation
        raw, generation = await self.remote.aget(scope, key)
        self._learn(scope, generation)
        return raw, generation

    def remember(self, scope: str, key: str, entry: Entry) -> None:
        """Keep a decoded entry in the L1, unless an invalidation arrived since it was read."""
        read_at = self._reads.pop(key, self._epoch)
        if (
            self._live.is_set()
            and read_at == self._epoch
            and self._generations.get(scope) == entry.generation
        ):
            self.local.set(scope, key, entry, 0.0)

    # -- writes: Redis first, then the message (and this process's own L1) -------------------

    def _publish(self, client: Any, *parts: str) -> None:
        client.publish(self.channel, "|".join((self._sender, *parts)))

    def set(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        """Store in Redis and tell the other processes to drop their copy: one pipeline."""
        full = self.remote.full_key(key)

        def run(client: Any) -> None:
            pipe = client.pipeline(transaction=False)
            pipe.set(full, stored, px=max(1, int(ttl * 1000)))
            self._publish(pipe, "del", key)
            pipe.execute()

        self.remote._command(run)

    async def aset(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        """[set][resilience_kit.cache.TieredBackend.set], awaitable."""
        full = self.remote.full_key(key)

        async def run(client: Any) -> None:
            pipe = client.pipeline(transaction=False)
            pipe.set(full, stored, px=max(1, int(ttl * 1000)))
            self._publish(pipe, "del", key)
            await pipe.execute()

        await self.remote._acommand(run)

    def acquire(self, scope: str, key: str) -> str | None:
        """The Redis tier's lease."""
        return self.remote.acquire(scope, key)

    async def aacquire(self, scope: str, key: str) -> str | None:
        """The Redis tier's lease, awaitable."""
        return await self.remote.aacquire(scope, key)

    def set_fenced(self, scope: str, key: str, stored: Any, ttl: float, token: str) -> bool:
        """The Redis tier's fenced write, then the message."""
        written = self.remote.set_fenced(scope, key, stored, ttl, token)
        if written:
            self.remote._command(lambda client: self._publish(client, "del", key))
        return written

    async def aset_fenced(self, scope: str, key: str, stored: Any, ttl: float, token: str) -> bool:
        """[set_fenced][resilience_kit.cache.TieredBackend.set_fenced], awaitable."""
        written = await self.remote.aset_fenced(scope, key, stored, ttl, token)
        if written:

            async def run(client: Any) -> None:
                await client.publish(self.channel, "|".join((self._sender, "del", key)))

            await self.remote._acommand(run)
        return written

    def delete(self, scope: str, key: str) -> None:
        """Delete everywhere: this L1, Redis, and (by message) the other processes' L1s."""
        self._apply_delete(key)
        self.remote.delete(scope, key)
        self.remote._command(lambda client: self._publish(client, "del", key))

    async def adelete(self, scope: str, key: str) -> None:
        """[delete][resilience_kit.cache.TieredBackend.delete], awaitable."""
        self._apply_delete(key)
        await self.remote.adelete(scope, key)

        async def run(client: Any) -> None:
            await client.publish(self.channel, "|".join((self._sender, "del", key)))

        await self.remote._acommand(run)

    def bump(self, scope: str) -> None:
        """Invalidate the prefix in Redis and in every process."""
        generation = self.remote.generation_key(scope)
        new = self.remote._command(lambda client: client.incr(generation))
        self._apply_generation(scope, int(new))
        self.remote._command(lambda client: self._publish(client, "gen", scope, str(new)))

    async def abump(self, scope: str) -> None:
        """[bump][resilience_kit.cache.TieredBackend.bump], awaitable."""
        generation = self.remote.generation_key(scope)

        async def run(client: Any) -> int:
            new = int(await client.incr(generation))
            await client.publish(self.channel, "|".join((self._sender, "gen", scope, str(new))))
            return new

        self._apply_generation(scope, await self.remote._acommand(run))

    def delete_matching(self, scope: str, pattern: str) -> int:
        """Delete matching entries in Redis and in every process's L1."""
        self._apply_pattern(pattern)
        deleted = self.remote.delete_matching(scope, pattern)
        self.remote._command(lambda client: self._publish(client, "pat", pattern))
        return deleted

    async def adelete_matching(self, scope: str, pattern: str) -> int:
        """[delete_matching][resilience_kit.cache.TieredBackend.delete_matching], awaitable."""
        self._apply_pattern(pattern)
        deleted = await self.remote.adelete_matching(scope, pattern)

        async def run(client: Any) -> None:
            await client.publish(self.channel, "|".join((self._sender, "pat", pattern)))

        await self.remote._acommand(run)
        return deleted

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
        sender, operation, *rest = text.split("|")
        if sender == self._sender:
            return
        if operation == "del":
            self._apply_delete(rest[0])
        elif operation == "gen":
            self._apply_generation(rest[0], int(rest[1]))
        elif operation == "pat":
            self._apply_pattern(rest[0])

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
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._drop_all()
                        self._live.set()
                        self._up = True
                    elif message["type"] == "message":
                        self._apply(message["data"])
            except Exception as error:
                if self._live.is_set():
                    _logger.warning(
                        "cache L1 on %r: invalidation listener lost (%s); L1 bypassed until "
                        "it is back",
                        self.channel,
                        error,
                    )
                self._drop_all()
                self._stop.wait(0.5)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # the connection may be gone already
                        pubsub.close()
        self._drop_all()

    def wait_live(self, timeout: float = 5.0) -> bool:
        """Wait until the invalidation listener is subscribed (the L1 is in use)."""
        return self._live.wait(timeout)

    def close(self) -> None:
        """Stop the listener and empty the L1 (the Redis tier stays open)."""
        self._stop.set()
        self._listener.join(5)

    def __repr__(self) -> str:
        return f"TieredBackend({self.remote!r}, max_entries={self.local.max_entries})"
