"""The in-process backend: a bounded LRU of live values, safe across threads and tasks."""

from __future__ import annotations

import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from resilience_kit import clock as _clock_module
from resilience_kit._validation import check_int
from resilience_kit.cache._frame import Entry
from resilience_kit.cache._keys import text_key
from resilience_kit.cache.serializers import JsonSerializer, Serializer

__all__ = ["MemoryBackend", "glob_regex"]

_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()
_JSON = JsonSerializer()


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching what the Redis glob ``pattern`` matches (``* ? [...] [^...] \\x``)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                negate = body[:1] == "^"
                body = body[1:] if negate else body
                escaped = re.sub(r"([\\\]\[^])", r"\\\1", body)
                out.append(f"[{'^' if negate else ''}{escaped}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


class MemoryBackend:
    """A bounded, in-process cache: least recently used entries go first past ``max_entries``.

    The default backend (see [configure][resilience_kit.cache.configure]). Values are kept as
    they are, not serialized (the serializer still checks each new value can be encoded, so
    moving to Redis later cannot fail on a value that worked here): every hit hands back the
    same object, so do not mutate what a cached function returns. One lock guards the table;
    it is never held across an ``await`` or a user's code, so threads and tasks share it safely.

    Args:
        max_entries: The most entries kept (>= 1).

    Raises:
        ConfigurationError: ``max_entries`` is out of range.
    """

    shared = False
    native_async = False
    stores_bytes = False
    compress_over: int | None = None
    peek = None

    __slots__ = ("_data", "_generations", "_lock", "max_entries")

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = check_int("max_entries", max_entries, minimum=1)
        self._data: OrderedDict[str, Entry] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, scope: str, key: str) -> tuple[Entry | None, int]:
        """The entry under ``key`` (or None) and ``scope``'s current generation."""
        data = self._data
        if _GIL:
            # Each OrderedDict method is one atomic step under the GIL: no lock needed to read.
            entry = data.get(key)
            if entry is not None:
                try:
                    data.move_to_end(key)
                except KeyError:  # deleted by another thread meanwhile
                    return None, self._generations.get(scope, 0)
        else:
            with self._lock:
                entry = data.get(key)
                if entry is not None:
                    data.move_to_end(key)
        return entry, self._generations.get(scope, 0)

    def set(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        """Store ``stored`` (an entry) under ``key``; ``ttl`` is read from the entry itself."""
        with self._lock:
            self._put(key, stored)

    def _put(self, key: str, entry: Entry) -> None:
        # The caller holds the lock.
        data = self._data
        data[key] = entry
        data.move_to_end(key)
        while len(data) > self.max_entries:
            data.popitem(last=False)

    def delete(self, scope: str, key: str) -> None:
        """Drop ``key``'s entry if there is one."""
        with self._lock:
            self._data.pop(key, None)

    def bump(self, scope: str) -> None:
        """Make every entry of ``scope`` stale at once (the next generation)."""
        with self._lock:
            self._generations[scope] = self._generations.get(scope, 0) + 1

    def delete_matching(self, scope: str, pattern: str) -> int:
        """Drop the entries whose key matches the Redis glob ``pattern``; return how many."""
        regex = glob_regex(pattern)
        with self._lock:
            doomed = [key for key in self._data if regex.fullmatch(key)]
            for key in doomed:
                del self._data[key]
        return len(doomed)

    def get_many(
        self, prefix: str, keys: Iterable[str], *, serializer: Serializer | None = None
    ) -> dict[str, Any]:
        """The fresh cached values of ``keys`` under ``prefix`` (those that are absent, past
        their ttl or of an older generation are left out).

        Keys are the ones ``@cached(prefix, key=...)`` makes from these texts, as on
        [RedisBackend.get_many][resilience_kit.cache.RedisBackend.get_many]. An entry past its
        ttl is left out even while ``stale_ttl`` lets the decorated function serve it: there,
        one caller refreshes it; a batch read would keep it stale. ``serializer`` is accepted
        for the same calls to work on every backend (values are kept as they are here).
        """
        now = _clock_module._default.monotonic()
        found: dict[str, Any] = {}
        with self._lock:
            current = self._generations.get(prefix, 0)
            data = self._data
            for text in keys:
                entry = data.get(text_key(prefix, text))
                if entry is not None and entry.generation == current and now < entry.fresh_until:
                    found[text] = entry.value
        return found

    def set_many(
        self,
        prefix: str,
        items: Mapping[str, Any],
        ttl: float,
        *,
        serializer: Serializer | None = None,
    ) -> None:
        """Store every value of ``items`` under ``prefix`` for ``ttl`` seconds.

        Raises:
            TypeError: ``serializer`` (JSON by default) cannot encode a value: nothing is
                stored, so moving to Redis later cannot fail on a batch that works here.
        """
        chosen = serializer or _JSON
        for value in items.values():
            chosen.dumps(value)
        now = _clock_module._default.monotonic()
        with self._lock:
            generation = self._generations.get(prefix, 0)
            for text, value in items.items():
                entry = Entry(value, generation, now + ttl, now + ttl, 0.0)
                self._put(text_key(prefix, text), entry)

    async def aget_many(
        self, prefix: str, keys: Iterable[str], *, serializer: Serializer | None = None
    ) -> dict[str, Any]:
        """[get_many][resilience_kit.cache.MemoryBackend.get_many], awaitable."""
        return self.get_many(prefix, keys, serializer=serializer)

    async def aset_many(
        self,
        prefix: str,
        items: Mapping[str, Any],
        ttl: float,
        *,
        serializer: Serializer | None = None,
    ) -> None:
        """[set_many][resilience_kit.cache.MemoryBackend.set_many], awaitable."""
        self.set_many(prefix, items, ttl, serializer=serializer)

    def clear(self) -> None:
        """Drop every entry and generation."""
        with self._lock:
            self._data.clear()
            self._generations.clear()

    def size(self) -> int:
        """How many entries are held (expired ones included until they are replaced)."""
        return len(self._data)

    def info(self) -> dict[str, Any]:
        """The backend's figures: ``backend``, ``total_keys``, ``max_entries``."""
        return {"backend": "memory", "total_keys": len(self._data), "max_entries": self.max_entries}

    async def ainfo(self) -> dict[str, Any]:
        """[info][resilience_kit.cache.MemoryBackend.info], awaitable."""
        return self.info()

    def __repr__(self) -> str:
        return f"MemoryBackend(max_entries={self.max_entries}, size={len(self._data)})"
