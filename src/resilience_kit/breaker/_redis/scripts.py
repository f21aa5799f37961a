"""Lua scripts run by SHA: loaded once per server, reloaded when a server has lost them.

A script is sent with ``EVALSHA``; a server that answers ``NOSCRIPT`` (it restarted, or
``SCRIPT FLUSH`` ran, or a Cluster node is new) gets the source once with ``SCRIPT LOAD`` and
the call is repeated. Nothing here retries anything else: a connection error goes to the caller.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

__all__ = ["Script", "load_script"]


class Script:
    """One Lua script, called by SHA through a sync or an asyncio redis-py client."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

    def __call__(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        """Run the script on a sync client."""
        from redis.exceptions import NoScriptError

        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    async def call_async(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        """Run the script on an asyncio client."""
        from redis.exceptions import NoScriptError

        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


def load_script(name: str) -> Script:
    """The script ``name`` shipped in this package."""
    return Script(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))
