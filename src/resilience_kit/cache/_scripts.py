"""The Lua scripts the Redis backends run, and how they are sent.

Every script names the keys it touches in ``KEYS`` and they always share one hash slot (the
prefix's), so each runs as one round trip on a single Redis or a Cluster alike. A script is
sent by its SHA1 (``EVALSHA``); a server that does not know it (restarted, flushed, a node
just added) gets the source once (``EVAL``, which also caches it there).
"""

from __future__ import annotations

import hashlib
from typing import Any

from resilience_kit.cache._frame import GENERATION_OFFSET, HEADER_SIZE, MAGIC

__all__ = [
    "BUMP_PUBLISH",
    "DELETE_PUBLISH",
    "FENCED_SET",
    "READ",
    "SET_PUBLISH",
    "Script",
    "no_script_error",
]


class Script:
    """A Lua script's source and its SHA1 (as bytes: redis-py sends bytes as they are)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest().encode()  # noqa: S324 - Redis's name

    def run(self, client: Any, missing: type[Exception], keys: tuple[Any, ...], *args: Any) -> Any:
        """Run on a sync client (``missing``: redis-py's ``NoScriptError``)."""
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except missing:
            return client.execute_command("EVAL", self.source, len(keys), *keys, *args)

    async def arun(
        self, client: Any, missing: type[Exception], keys: tuple[Any, ...], *args: Any
    ) -> Any:
        """Run on an asyncio client."""
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except missing:
            return await client.execute_command("EVAL", self.source, len(keys), *keys, *args)


def no_script_error() -> type[Exception]:
    """redis-py's ``NoScriptError`` (imported when a backend is made, not with the package)."""
    try:
        from redis.exceptions import NoScriptError
    except ImportError:  # pragma: no cover - without redis-py there is no client to raise it
        return _NeverRaised
    return NoScriptError


class _NeverRaised(Exception):
    """Stands for ``NoScriptError`` without redis-py."""


_FIRST = GENERATION_OFFSET + 1  # Lua counts from 1

READ = Script(f"""
local entry = redis.call('GET', KEYS[2])
local current = tonumber(redis.call('GET', KEYS[1])) or 0
local ours = entry and #entry >= {HEADER_SIZE}
if ours and string.sub(entry, 1, {len(MAGIC)}) == '{MAGIC.decode()}' then
  local a, b, c, d, e, f, g, h = string.byte(entry, {_FIRST}, {_FIRST + 7})
  local written = ((((((a*256 + b)*256 + c)*256 + d)*256 + e)*256 + f)*256 + g)*256 + h
  if written == current then return entry end
end
return {{current, entry}}
""")
"""A hit's one round trip. KEYS: the prefix's generation, the entry.

Answers the entry alone when its header's generation is the prefix's current one (a single
bulk reply, as cheap to parse as a ``GET``'s), else ``{generation, entry}`` (a negative
generation, only ever made by hand, always takes that way). Pure Lua 5.1: no ``struct``
library, which some servers lack.
"""

FENCED_SET = Script("""
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or holder == false then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  if holder then redis.call('DEL', KEYS[1]) end
  if ARGV[4] then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
  return 1
end
return 0
""")
"""Store and release, if the lease is still the caller's (or free). KEYS: the lease, the
entry. ARGV: token, value, ttl in ms, and optionally a channel and a message to publish when
the value is stored."""

SET_PUBLISH = Script("""
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
""")
"""Store and publish (a two-tier write; a Cluster pipeline refuses ``PUBLISH``). KEYS: the
entry. ARGV: value, ttl in ms, channel, message."""

DELETE_PUBLISH = Script("""
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
""")
"""Delete and publish. KEYS: the entry. ARGV: channel, message."""

BUMP_PUBLISH = Script("""
local generation = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. generation)
return generation
""")
"""Start the prefix's next generation and publish it (the message ends with it). KEYS: the
generation. ARGV: channel, message head."""
