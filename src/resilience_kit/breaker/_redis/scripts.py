"""Lua scripts run by SHA: loaded once per server, reloaded when a server has lost them.

A script is sent with ``EVALSHA`` (many at once in a pipeline); a server that answers
``NOSCRIPT`` (it restarted, or ``SCRIPT FLUSH`` ran, or a Cluster node is new) gets the source
once with ``SCRIPT LOAD`` and the call is repeated. Nothing here retries anything else: a
connection error goes to the caller.
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

    def run_many(self, client: Any, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run the script once per ``(keys, args)`` on a sync client, pipelined: one round
        trip, or on a Cluster one per node that holds some of the keys. Each call's reply, or
        the exception it met, in order; a connection error raises."""
        from resilience_kit.breaker._redis.clients import is_cluster_client

        if not is_cluster_client(client):
            return self._on_one_server(client, calls)
        # redis-py's Cluster pipeline refuses scripts: one plain pipeline per node.
        nodes: dict[str, tuple[Any, list[int]]] = {}
        for index, (keys, _args) in enumerate(calls):
            node = client.get_node_from_key(keys[0])
            nodes.setdefault(node.name, (node, []))[1].append(index)
        replies: list[Any] = [None] * len(calls)
        for node, indexes in nodes.values():
            server = client.get_redis_connection(node)
            answers = self._on_one_server(server, [calls[index] for index in indexes])
            for index, reply in zip(indexes, answers, strict=True):
                replies[index] = reply
        for index, reply in enumerate(replies):
            if isinstance(reply, Exception):
                # A slot that moved (MOVED, ASK, TRYAGAIN): once more through the Cluster
                # client, which follows redirections.
                try:
                    replies[index] = self(client, *calls[index])
                except Exception as error:
                    replies[index] = error
        return replies

    def _on_one_server(self, client: Any, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        from redis.exceptions import NoScriptError

        replies = self._pipelined(client, calls)
        lost = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost:
            client.script_load(self.source)
            again = self._pipelined(client, [calls[index] for index in lost])
            for index, reply in zip(lost, again, strict=True):
                replies[index] = reply
        return replies

    def _pipelined(self, client: Any, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        return list(pipe.execute(raise_on_error=False))


def load_script(name: str) -> Script:
    """The script ``name`` shipped in this package."""
    return Script(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))
