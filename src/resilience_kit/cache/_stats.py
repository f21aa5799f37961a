"""Hit, miss and error counts per prefix, and their frozen snapshots.

Counters are `itertools.count` objects: ``next()`` on one is a single atomic step, so the
hot path counts without a lock and [cache_stats][resilience_kit.cache.cache_stats] never
does I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from resilience_kit.breaker.storage import read_count

__all__ = ["CacheStats", "PrefixStats", "cache_stats", "counters_for", "reset_cache_stats"]


class Counters:
    """One prefix's live counters."""

    __slots__ = ("errors", "hits", "lock_waits", "misses", "stale")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start every count again from zero."""
        self.hits = itertools.count()
        self.misses = itertools.count()
        self.errors = itertools.count()
        self.stale = itertools.count()
        self.lock_waits = itertools.count()

    def snapshot(self) -> PrefixStats:
        hits, misses = read_count(self.hits), read_count(self.misses)
        return PrefixStats(
            hits=hits,
            misses=misses,
            errors=read_count(self.errors),
            stale=read_count(self.stale),
            lock_waits=read_count(self.lock_waits),
            hit_rate=_rate(hits, misses),
        )


def _rate(hits: int, misses: int) -> float:
    total = hits + misses
    return hits / total if total else 0.0


@dataclass(frozen=True)
class PrefixStats:
    """What one prefix's cache did since the process started (or the counters were reset).

    Attributes:
        hits: Calls answered from the cache with a fresh value.
        misses: Calls that ran the function (or waited for another caller that did).
        errors: Backend failures and undecodable entries, each taken as a miss.
        stale: Calls answered with a stale value while one caller refreshed it.
        lock_waits: Calls that waited for another caller's computation of their key.
        hit_rate: ``hits / (hits + misses)``, 0.0 before any call.
    """

    hits: int = 0
    misses: int = 0
    errors: int = 0
    stale: int = 0
    lock_waits: int = 0
    hit_rate: float = 0.0


@dataclass(frozen=True)
class CacheStats:
    """Every prefix's figures and totals, from [cache_stats][resilience_kit.cache.cache_stats].

    Attributes:
        hits: Total hits.
        misses: Total misses.
        errors: Total backend errors and undecodable entries.
        stale: Total stale serves.
        lock_waits: Total waits for another caller's computation.
        hit_rate: ``hits / (hits + misses)`` over every prefix.
        prefixes: [PrefixStats][resilience_kit.cache.PrefixStats] by prefix.
    """

    hits: int = 0
    misses: int = 0
    errors: int = 0
    stale: int = 0
    lock_waits: int = 0
    hit_rate: float = 0.0
    prefixes: Mapping[str, PrefixStats] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, object]:
        """JSON-able: the totals, and ``prefixes`` as nested dicts."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "stale": self.stale,
            "lock_waits": self.lock_waits,
            "hit_rate": self.hit_rate,
            "prefixes": {
                name: {
                    "hits": s.hits,
                    "misses": s.misses,
                    "errors": s.errors,
                    "stale": s.stale,
                    "lock_waits": s.lock_waits,
                    "hit_rate": s.hit_rate,
                }
                for name, s in self.prefixes.items()
            },
        }


_counters: dict[str, Counters] = {}


def counters_for(prefix: str) -> Counters:
    """The live counters of ``prefix`` (created on first use; kept for the process)."""
    found = _counters.get(prefix)
    if found is None:
        found = _counters.setdefault(prefix, Counters())
    return found


def cache_stats() -> CacheStats:
    """A frozen snapshot of every prefix's hits, misses, errors and stale serves.

    Sync and without I/O: safe in a metrics scrape or a health endpoint. Server-side figures
    (memory used, key counts) come from a backend's ``info()``.
    """
    prefixes = {name: counters.snapshot() for name, counters in tuple(_counters.items())}
    hits = sum(s.hits for s in prefixes.values())
    misses = sum(s.misses for s in prefixes.values())
    return CacheStats(
        hits=hits,
        misses=misses,
        errors=sum(s.errors for s in prefixes.values()),
        stale=sum(s.stale for s in prefixes.values()),
        lock_waits=sum(s.lock_waits for s in prefixes.values()),
        hit_rate=_rate(hits, misses),
        prefixes=MappingProxyType(prefixes),
    )


def reset_cache_stats() -> None:
    """Zero every prefix's counters (for tests)."""
    for counters in tuple(_counters.values()):
        counters.reset()
