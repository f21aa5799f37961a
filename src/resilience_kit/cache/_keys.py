"""Cache keys: the bound arguments, encoded canonically, hashed, under the prefix.

A key reads ``{namespace}:{{prefix}}:{part}:...:{digest}``. The digest (128 bits of BLAKE2b) is
the identity: it hashes a type-tagged, length-prefixed encoding of every bound argument, so
``f(1)``, ``f(x=1)`` and ``f()`` with ``x=1`` as the default agree, while ``1``, ``"1"``,
``1.0`` and ``True`` differ. The parts before it are a readable rendering of the int and str
arguments (percent-encoded, so no ``* ? [ ] { } :`` or control character of the user's ever
reaches a key) for people reading keys and for
[invalidate_pattern][resilience_kit.cache.invalidate_pattern]. The prefix sits in a Redis Cluster
hash tag: all of one prefix's keys (its entries, its generation, its leases) share a slot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import inspect
import re
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from resilience_kit.errors import ConfigurationError

__all__ = ["KeyBuilder", "check_name", "escape_glob", "key_part", "text_key"]

DIGEST_HEX = 32
"""Hex digits in a key's digest (BLAKE2b with a 16-byte digest)."""

_NAME = re.compile(r"[A-Za-z0-9_.\-/]+(?::[A-Za-z0-9_.\-/]+)*")
_PART_LIMIT = 64
_SELF_NAMES = ("self", "cls")


def check_name(parameter: str, value: Any) -> str:
    """Return ``value`` if it may be a namespace or a prefix.

    Letters, digits, ``_ . - /`` and single ``:`` separators: never a glob metacharacter or a
    brace (a prefix is a Redis Cluster hash tag), so a name needs no escaping anywhere.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigurationError(
            f"{parameter} must be a non-empty str of letters, digits, '_', '.', '-', '/' and "
            f"single ':' separators, got {value!r}",
            parameter=parameter,
            value=value,
        )
    return value


def key_part(value: object) -> str:
    """The text an int or str argument shows in a key (``_`` for anything else).

    Safe to put in a pattern for [invalidate_pattern][resilience_kit.cache.invalidate_pattern]:
    it matches that value literally, whatever characters it holds.
    """
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str:
        text: str = value  # type: ignore[assignment]
        if text.isascii() and text.isalnum():
            return text if len(text) <= _PART_LIMIT else text[:_PART_LIMIT] + "+"
        escaped = quote(text, safe="", errors="surrogatepass")
        return escaped if len(escaped) <= _PART_LIMIT else escaped[:_PART_LIMIT] + "+"
    return "_"


_GLOB = re.compile(r"([*?\[\]\\])")


def escape_glob(text: str) -> str:
    """``text`` with Redis glob metacharacters escaped, so it matches itself only."""
    return _GLOB.sub(r"\\\1", text)


def text_key(prefix: str, text: str) -> str:
    """The key ``@cached(prefix, key=...)`` makes when its key function returns ``text``."""
    return f"{{{prefix}}}:{key_part(text)}:{_digest(_text('s', text))}"


# -- canonical encoding -------------------------------------------------------------------------


class Unencodable(TypeError):
    """A value with no canonical encoding (the builder names the parameter)."""


def _text(tag: str, text: str) -> str:
    return f"{tag}{len(text)}:{text}"


def _encode_other(value: Any, out: list[str]) -> None:
    kind = type(value)
    if kind is tuple or kind is list:
        out.append("(" if kind is tuple else "[")
        for item in value:
            _encode(item, out)
        out.append(")" if kind is tuple else "]")
    elif kind is dict:
        items = []
        for name, item in value.items():
            pair: list[str] = []
            _encode(name, pair)
            _encode(item, pair)
            items.append("".join(pair))
        items.sort()
        out.append(f"{{{len(items)}:{''.join(items)}}}")
    elif kind is set or kind is frozenset:
        members = []
        for item in value:
            one: list[str] = []
            _encode(item, one)
            members.append("".join(one))
        members.sort()
        out.append(f"<{'s' if kind is set else 'z'}{len(members)}:{''.join(members)}>")
    elif kind is bytes or kind is bytearray:
        out.append(f"b{len(value)}:{bytes(value).hex()}")
    elif kind is float:
        out.append("f" + value.hex() + ";")
    elif kind is Decimal:
        out.append(_text("D", str(value)))
    elif kind is uuid.UUID:
        out.append("U" + value.hex)
    elif kind is dt.datetime or kind is dt.date or kind is dt.time:
        out.append(_text("t" + kind.__name__[:2], value.isoformat()))
        tz = getattr(value, "tzinfo", None)
        if tz is not None:
            out.append(_text("z", repr(tz)))
    elif kind is dt.timedelta:
        out.append(f"d{value.days},{value.seconds},{value.microseconds};")
    elif isinstance(value, enum.Enum):
        out.append(_text("e", f"{kind.__module__}.{kind.__qualname__}"))
        _encode(value.value, out)
    elif hasattr(value, "__cache_key__"):
        out.append(_text("k", f"{kind.__module__}.{kind.__qualname__}"))
        _encode(value.__cache_key__(), out)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(_text("c", f"{kind.__module__}.{kind.__qualname__}"))
        for field in dataclasses.fields(value):
            _encode(getattr(value, field.name), out)
        out.append(".")
    else:
        raise Unencodable(kind)


def _encode(value: Any, out: list[str]) -> None:
    kind = type(value)
    if kind is int:
        out.append(f"i{value};")
    elif kind is str:
        out.append(f"s{len(value)}:{value}")
    elif value is None:
        out.append("N")
    elif kind is bool:
        out.append("T" if value else "F")
    else:
        _encode_other(value, out)


def _digest(encoded: str) -> str:
    data = encoded.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_MEMO_LIMIT = 4096
_MEMO_ENCODING = 256


# -- binding ------------------------------------------------------------------------------------

_MISSING = object()


class _Unbound(Exception):
    """The call does not fit the signature; the function itself will say how."""


class KeyBuilder:
    """Builds one function's keys from its call arguments.

    Binding is precomputed from the signature once: a call passing every parameter by position
    (the common case) costs a length check; others fill keywords and defaults by name. Never
    `inspect.Signature.bind`, which costs microseconds per call.
    """

    __slots__ = (
        "_custom",
        "_defaults",
        "_fast",
        "_function",
        "_head",
        "_index",
        "_keep",
        "_memo",
        "_names",
        "_positional",
        "_skip_first",
        "_var_keyword",
        "_var_positional",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        head: str,
        include_self: bool = False,
        exclude: Iterable[str] = (),
        custom: Callable[..., str] | None = None,
    ) -> None:
        self._function = getattr(fn, "__qualname__", repr(fn))
        self._head = head
        self._custom = custom
        self._memo: dict[str, str] = {}
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        self._skip_first = bool(
            not include_self
            and params
            and params[0].name in _SELF_NAMES
            and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD)
        )
        excluded = set(exclude)
        unknown = excluded - {p.name for p in params}
        if unknown:
            raise ConfigurationError(
                f"exclude names {sorted(unknown)!r}, which are not parameters of "
                f"{self._function}()",
                parameter="exclude",
                value=tuple(exclude),
            )
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        keyword_only = [p for p in params if p.kind is p.KEYWORD_ONLY]
        self._positional = len(positional)
        # Calls passing exactly every parameter by position skip binding (-1: never).
        self._fast = len(positional) if not keyword_only else -1
        ordered = positional + keyword_only
        self._names = tuple(p.name for p in ordered)
        self._index = {p.name: i for i, p in enumerate(ordered) if p.kind is not p.POSITIONAL_ONLY}
        self._defaults = tuple(_MISSING if p.default is p.empty else p.default for p in ordered)
        first = 1 if self._skip_first else 0
        self._keep = tuple(
            i for i, p in enumerate(ordered) if i >= first and p.name not in excluded
        )
        var_positional = [p for p in params if p.kind is p.VAR_POSITIONAL]
        var_keyword = [p for p in params if p.kind is p.VAR_KEYWORD]
        self._var_positional = (
            var_positional[0].name
            if var_positional and var_positional[0].name not in excluded
            else None
        )
        self._var_keyword = (
            var_keyword[0].name if var_keyword and var_keyword[0].name not in excluded else None
        )
        if var_positional and not self._var_positional:
            self._var_positional = ""  # accepted, not part of the key

    def build(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The key for a call with these arguments; ``None`` if they do not fit the signature.

        Raises:
            TypeError: An argument has no canonical encoding (the message names it).
        """
        custom = self._custom
        if custom is not None:
            return self._from_custom(custom(*args, **kwargs))
        if not kwargs and len(args) == self._fast:
            values: tuple[Any, ...] | list[Any] = args
            extra: tuple[Any, ...] = ()
            named: dict[str, Any] = {}
        else:
            try:
                values, extra, named = self._bind(args, kwargs)
            except _Unbound:
                return None
        out: list[str] = []
        for index in self._keep:
            value = values[index]
            kind = type(value)
            if kind is int:
                out.append(f"i{value};")
            elif kind is str:
                out.append(f"s{len(value)}:{value}")
            else:
                try:
                    _encode(value, out)
                except Unencodable as error:
                    raise self._unencodable(self._names[index], value, error) from None
        if self._var_positional:
            try:
                _encode(tuple(extra), out)
            except Unencodable as error:
                raise self._unencodable("*" + self._var_positional, extra, error) from None
        if self._var_keyword:
            try:
                _encode(named, out)
            except Unencodable as error:
                raise self._unencodable("**" + self._var_keyword, named, error) from None
        encoded = "".join(out)
        memo = self._memo
        key = memo.get(encoded)
        if key is None:
            # The encoding determines the arguments, so it determines the key: hot keys are
            # built once. Bounded: cleared when full.
            parts = [self._head]
            parts.extend(key_part(values[index]) for index in self._keep)
            parts.append(_digest(encoded))
            key = ":".join(parts)
            if len(encoded) <= _MEMO_ENCODING:
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[encoded] = key
        return key

    def _from_custom(self, text: object) -> str:
        if not isinstance(text, str):
            raise TypeError(
                f"the key function of {self._function}() must return a str, "
                f"got {type(text).__name__}"
            )
        return f"{self._head}:{key_part(text)}:{_digest(_text('s', text))}"

    def _bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[Any], tuple[Any, ...], dict[str, Any]]:
        count = self._positional
        values = list(args[:count])
        extra = args[count:]
        if extra and self._var_positional is None:
            raise _Unbound
        values.extend(self._defaults[len(values) :])
        named: dict[str, Any] = {}
        index = self._index
        for name, value in kwargs.items():
            at = index.get(name)
            if at is None:
                if self._var_keyword is None:
                    raise _Unbound
                named[name] = value
                continue
            if at < len(args) and at < count:
                raise _Unbound  # given twice
            values[at] = value
        if any(value is _MISSING for value in values):
            raise _Unbound
        return values, extra, named

    def _unencodable(self, name: str, value: Any, error: Unencodable) -> TypeError:
        kind = error.args[0] if error.args else type(value)
        where = "" if kind is type(value) else f" (it holds a {kind.__module__}.{kind.__name__})"
        return TypeError(
            f"cannot build a cache key for {self._function}(): parameter {name!r} is a "
            f"{type(value).__module__}.{type(value).__name__}{where}, which has no canonical "
            "encoding; pass key= to @cached, exclude the parameter with exclude=, or give "
            "the type a __cache_key__() method returning an encodable value"
        )
