"""The process-wide registry of live breakers, by name.

Entries are weak references: a breaker nobody uses any more frees its name without anyone
unregistering it. Dead references are pruned lazily, under the registry's lock, instead of from
weakref callbacks that could run (through garbage collection) while that lock is held.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from resilience_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker
    from resilience_kit.breaker.storage import BreakerStorage

__all__ = ["breakers", "every_breaker", "get_breaker", "register", "unregister"]

# name -> [(breaker, storage it shares on purpose or None)]
_entries: dict[str, list[tuple[weakref.ref[CircuitBreaker], BreakerStorage | None]]] = {}
_lock = threading.Lock()


def _live(name: str) -> list[tuple[weakref.ref[CircuitBreaker], BreakerStorage | None]]:
    entries = [entry for entry in _entries.get(name, ()) if entry[0]() is not None]
    if entries:
        _entries[name] = entries
    else:
        _entries.pop(name, None)
    return entries


def register(breaker: CircuitBreaker, shared: BreakerStorage | None) -> None:
    """Add ``breaker`` under its name.

    Raises:
        ConfigurationError: another live breaker has the name, and the two do not both share
            one storage on purpose.
    """
    name = breaker.name
    with _lock:
        entries = _live(name)
        if any(shared is None or other is not shared for _, other in entries):
            raise ConfigurationError(
                f"name must be unique among live breakers, got {name!r}, which is in use "
                "(use CircuitBreaker.shared() with one storage to share a circuit on purpose, "
                "or unregister() the other breaker)",
                parameter="name",
                value=name,
            )
        entries.append((weakref.ref(breaker), shared))
        _entries[name] = entries


def unregister(breaker: CircuitBreaker) -> None:
    """Remove ``breaker`` from the registry (nothing happens if it is not there)."""
    with _lock:
        entries = [entry for entry in _live(breaker.name) if entry[0]() is not breaker]
        if entries:
            _entries[breaker.name] = entries
        else:
            _entries.pop(breaker.name, None)


def breakers() -> dict[str, CircuitBreaker]:
    """Every live breaker in the process, by name.

    Breakers that share a name on purpose share one state; the first one created stands for
    them all.
    """
    found: dict[str, CircuitBreaker] = {}
    with _lock:
        for name in list(_entries):
            for ref, _ in _live(name):
                breaker = ref()
                if breaker is not None:
                    found[name] = breaker
                    break
    return found


def every_breaker() -> list[CircuitBreaker]:
    """Every live breaker, those that share a name on purpose included."""
    found: list[CircuitBreaker] = []
    with _lock:
        for name in list(_entries):
            found.extend(breaker for ref, _ in _live(name) if (breaker := ref()) is not None)
    return found


def get_breaker(name: str) -> CircuitBreaker:
    """The live breaker called ``name``.

    Raises:
        KeyError: no live breaker has that name.
    """
    found = breakers().get(name)
    if found is None:
        raise KeyError(f"no live circuit breaker is named {name!r}")
    return found
