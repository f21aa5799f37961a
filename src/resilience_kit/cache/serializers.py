"""How cached values become bytes, and back.

Three serializers, one [Serializer][resilience_kit.cache.serializers.Serializer] protocol:

* [JsonSerializer][resilience_kit.cache.JsonSerializer], the default: JSON, plus tags for the
  types JSON would change (tuples, sets, bytes, dates and times, decimals, UUIDs, enums,
  dataclasses, dicts with non-str keys). Anything else raises `TypeError`.
* [MsgpackSerializer][resilience_kit.cache.MsgpackSerializer] (the ``msgpack`` extra): the same
  types, smaller and faster for large values.
* [PickleSerializer][resilience_kit.cache.PickleSerializer]: any picklable value, only when you
  give it a secret; every entry is signed with HMAC-SHA256 and checked in constant time before
  anything is unpickled, so whoever can write to your Redis cannot make your process run code.

The cache wraps every serialized value in a small header (format, version, compression, times),
so an entry from another format, truncated or corrupted is a miss, never an exception or a
wrong value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from typing import Any, Protocol, runtime_checkable

from resilience_kit.cache._tagged import TAG, from_plain, to_plain
from resilience_kit.errors import ConfigurationError

__all__ = ["JsonSerializer", "MsgpackSerializer", "PickleSerializer", "Serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back.

    Attributes:
        format_id: One byte (1-255) recorded in every entry's header; an entry written by
            another format is a miss. 1-3 are the built-in serializers'; pick 128-255 for yours.
    """

    format_id: int

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise `TypeError` if it cannot be encoded faithfully."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode what [dumps][resilience_kit.cache.serializers.Serializer.dumps] made.

        Any exception means the data is not such an encoding: the entry is a miss.
        """
        ...


def _is_plain(value: Any) -> bool:
    """Whether JSON keeps ``value`` exactly as it is (no tags needed)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return True
    if kind is list:
        return all(_is_plain(item) for item in value)
    if kind is dict:
        return TAG not in value and all(type(k) is str and _is_plain(v) for k, v in value.items())
    return False


def _refused(value: Any, error: BaseException) -> TypeError:
    kind = type(value)
    return TypeError(f"a {kind.__module__}.{kind.__qualname__} value cannot be serialized: {error}")


_PLAIN = b"p"
_TAGGED = b"t"


class JsonSerializer:
    """JSON with faithful types: the default serializer.

    Plain JSON values (dicts with str keys, lists, str, int, float, bool, None) are stored as
    plain JSON. Tuples, sets, frozensets, bytes, `datetime`/`date`/`time`/`timedelta` (time
    zones included), `Decimal`, `UUID`, enums, dataclasses and
    dicts with non-str keys come back as the same types. Enums and dataclasses must be defined
    at module level, and their module imported when an entry is read (it is never imported
    for you). Anything else raises `TypeError` naming the type and where it was found.
    """

    format_id = 1
    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` (see the class docs for the types)."""
        if _is_plain(value):
            mode, tree = _PLAIN, value
        else:
            mode, tree = _TAGGED, to_plain(value)
        try:
            text = json.dumps(tree, ensure_ascii=False, separators=(",", ":"))
        except (ValueError, OverflowError) as error:  # an int past the digit limit
            raise _refused(value, error) from None
        return mode + text.encode("utf-8", "surrogatepass")

    def loads(self, data: bytes) -> Any:
        """Decode what [dumps][resilience_kit.cache.serializers.JsonSerializer.dumps] made."""
        mode = data[:1]
        tree = json.loads(data[1:].decode("utf-8", "surrogatepass"))
        if mode == _PLAIN:
            return tree
        if mode == _TAGGED:
            return from_plain(tree)
        raise ValueError("not a JsonSerializer payload")

    def __repr__(self) -> str:
        return "JsonSerializer()"


class MsgpackSerializer:
    """msgpack, as faithful to types as [JsonSerializer][resilience_kit.cache.JsonSerializer].

    Needs the ``msgpack`` extra (``pip install resilience-kit-py[msgpack]``). Bytes are stored
    natively; everything else JSON lacks is tagged as in the JSON serializer.

    Raises:
        ConfigurationError: msgpack is not installed (at construction).
    """

    format_id = 2
    __slots__ = ("_packb", "_unpackb")

    def __init__(self) -> None:
        try:
            import msgpack  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError:
            raise ConfigurationError(
                "MsgpackSerializer needs msgpack: pip install 'resilience-kit-py[msgpack]'",
                parameter="serializer",
                value="MsgpackSerializer",
            ) from None
        self._packb = msgpack.packb
        self._unpackb = msgpack.unpackb

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``."""
        tree = value if _is_plain(value) else to_plain(value)
        try:
            packed: bytes = self._packb(tree, use_bin_type=True)
        except (ValueError, OverflowError) as error:  # an int past 64 bits, a lone surrogate
            raise _refused(value, error) from None
        return packed

    def loads(self, data: bytes) -> Any:
        """Decode what [dumps][resilience_kit.cache.serializers.MsgpackSerializer.dumps] made."""
        tree = self._unpackb(data, raw=False, strict_map_key=True, use_list=True)
        return from_plain(tree)

    def __repr__(self) -> str:
        return "MsgpackSerializer()"


_SIGNATURE = 32


class PickleSerializer:
    """pickle, signed: any picklable value, for stores only your services can write.

    Every payload carries an HMAC-SHA256 of the pickle made with ``secret``; it is checked
    with `hmac.compare_digest` (constant time) before anything is unpickled, so a forged or
    altered entry is a miss and never reaches `pickle.loads`. Everyone who can read the
    secret can still write entries that run code when read: keep it out of the cache's store.

    Args:
        secret: The signing key, at least 16 bytes (a str is UTF-8 encoded).
        protocol: The pickle protocol (the highest by default).

    Raises:
        ConfigurationError: ``secret`` is missing or shorter than 16 bytes.
    """

    format_id = 3
    __slots__ = ("_protocol", "_secret")

    def __init__(self, *, secret: str | bytes, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if not isinstance(key, bytes) or len(key) < 16:
            raise ConfigurationError(
                "secret must be a str or bytes of at least 16 bytes (a random key kept out "
                "of the cache), got " + ("a shorter one" if isinstance(key, bytes) else repr(key)),
                parameter="secret",
                value="<redacted>",
            )
        self._secret = key
        self._protocol = protocol

    def dumps(self, value: Any) -> bytes:
        """Pickle and sign ``value``; an unpicklable value raises `TypeError`."""
        try:
            body = pickle.dumps(value, protocol=self._protocol)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            kind = type(value)
            raise TypeError(
                f"{kind.__module__}.{kind.__qualname__} cannot be pickled: {error}"
            ) from error
        return hmac.new(self._secret, body, hashlib.sha256).digest() + body

    def loads(self, data: bytes) -> Any:
        """Check the signature, then unpickle; a bad signature raises `ValueError`."""
        signature, body = data[:_SIGNATURE], data[_SIGNATURE:]
        expected = hmac.new(self._secret, body, hashlib.sha256).digest()
        if len(signature) != _SIGNATURE or not hmac.compare_digest(signature, expected):
            raise ValueError("the entry's signature does not match")
        return pickle.loads(body)  # noqa: S301 - signed with the user's secret, checked above

    def __repr__(self) -> str:
        return "PickleSerializer(secret=<redacted>)"
