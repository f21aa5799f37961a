"""The header every stored entry carries, and compression.

An entry is ``b"RK"``, a version byte, the serializer's format byte, a flags byte
(bit 0: zlib-compressed), the prefix generation it was written under, the times it stays
fresh and stale until (the backend's time base), how long computing it took (for early
refresh) and the payload's length, then the serialized value. Anything that does not parse
as such, is longer or shorter than its header says (a truncated JSON number would otherwise
decode as another number), or decodes with another format, is a miss.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, NamedTuple

from resilience_kit.cache.serializers import Serializer

__all__ = [
    "GENERATION_OFFSET",
    "HEADER_SIZE",
    "MAGIC",
    "Entry",
    "MAX_DECOMPRESSED",
    "generation_of",
    "pack",
    "unpack",
]

_HEADER = struct.Struct(">2sBBBqddfI")
_MAGIC = b"RK"
MAGIC = _MAGIC
"""The first bytes of every entry."""
HEADER_SIZE = _HEADER.size
"""Bytes before the payload."""
GENERATION_OFFSET = 5
"""Where the header's generation (a big-endian signed 64-bit int) starts."""
_GENERATION = struct.Struct(">q")
_VERSION = 2
_COMPRESSED = 1
MAX_DECOMPRESSED = 256 * 1024 * 1024
"""Bytes an entry may inflate to; a larger one (a zip bomb) is a miss."""


class Entry(NamedTuple):
    """A cached value and its times, as the decorator reads it from any backend."""

    value: Any
    generation: int
    fresh_until: float
    stale_until: float
    delta: float


def generation_of(data: bytes) -> int:
    """The generation in ``data``'s header (``data`` is at least [HEADER_SIZE][] long)."""
    generation: int = _GENERATION.unpack_from(data, GENERATION_OFFSET)[0]
    return generation


class CorruptEntry(ValueError):
    """A stored entry that is not one this library wrote with this serializer."""


def pack(entry: Entry, serializer: Serializer, payload: bytes, compress_over: int | None) -> bytes:
    """Frame ``payload`` (``serializer.dumps(entry.value)``) with ``entry``'s header."""
    flags = 0
    if compress_over is not None and len(payload) > compress_over:
        squeezed = zlib.compress(payload, 1)
        if len(squeezed) < len(payload):
            payload, flags = squeezed, _COMPRESSED
    header = _HEADER.pack(
        _MAGIC,
        _VERSION,
        serializer.format_id,
        flags,
        entry.generation,
        entry.fresh_until,
        entry.stale_until,
        entry.delta,
        len(payload),
    )
    return header + payload


def unpack(data: Any, serializer: Serializer) -> Entry:
    """The entry in ``data``.

    Raises:
        CorruptEntry: ``data`` is not an entry of ``serializer``'s format, or does not decode.
    """
    if type(data) is not bytes or len(data) < _HEADER.size:
        raise CorruptEntry("too short, or not bytes")
    header = _HEADER.unpack_from(data)
    magic, version, format_id, flags, generation, fresh, stale, delta, length = header
    if magic != _MAGIC or version != _VERSION:
        raise CorruptEntry("not a resilience_kit entry")
    if len(data) - _HEADER.size != length:
        raise CorruptEntry("truncated or extended: the payload's length is not the header's")
    if format_id != serializer.format_id:
        raise CorruptEntry(f"written by format {format_id}, read as {serializer.format_id}")
    payload = data[_HEADER.size :]
    if flags & _COMPRESSED:
        inflater = zlib.decompressobj()
        try:
            payload = inflater.decompress(payload, MAX_DECOMPRESSED)
        except zlib.error as error:
            raise CorruptEntry(f"bad compression: {error}") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise CorruptEntry("compressed data truncated or too large")
    elif flags:
        raise CorruptEntry(f"unknown flags {flags}")
    try:
        value = serializer.loads(payload)
    except Exception as error:
        raise CorruptEntry(f"does not decode: {type(error).__name__}: {error}") from None
    return Entry(value, generation, fresh, stale, delta)
