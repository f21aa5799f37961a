"""Key and channel names: one hash tag per shared object, so Redis Cluster keeps its keys together.

Every key of one object starts with ``{PREFIX:KIND:NAME}``: Cluster hashes only what is inside
the braces, so all of that object's keys land in one slot and one Lua script may touch them
all. Different names give different tags, so two objects never share a key. The pub/sub
channel is per prefix and kind (a channel is not a key; Cluster broadcasts it to every node).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeySpace"]


@dataclass(frozen=True, slots=True)
class KeySpace:
    """The names under one ``prefix``."""

    prefix: str

    def tag(self, kind: str, name: str) -> str:
        """The hash tag of object ``name`` of ``kind`` (``"breaker"``, ...)."""
        return "{" + f"{self.prefix}:{kind}:{name}" + "}"

    def keys(self, kind: str, name: str, *parts: str) -> list[str]:
        """The keys ``{tag}:part`` of one object, in the order of ``parts``."""
        tag = self.tag(kind, name)
        return [f"{tag}:{part}" for part in parts]

    def channel(self, kind: str) -> str:
        """The channel on which changes to every object of ``kind`` are announced."""
        return f"{self.prefix}:{kind}:events"
