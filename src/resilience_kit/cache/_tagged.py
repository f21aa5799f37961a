"""Values to plain JSON-able trees and back, with tags for every type JSON would change.

JSON has no tuple, set, bytes, date, decimal or UUID, and only str keys: encoded naively, a
tuple comes back a list and a Decimal a float. Here such a value becomes a one-key object
``{"\\u0000t": [tag, payload]}``; plain dicts, lists, str, int, float, bool and None stay as
they are. A dict that happens to have that key (or any non-str key) is tagged itself, so
decoding is unambiguous. Types with no tag raise `TypeError` naming the type and where it was
found: nothing is ever silently converted.

Dataclasses and enums are looked up by ``module:qualname`` among the modules already imported
(never importing anything), and must be a dataclass or an Enum there: cached data cannot make
the process import or call arbitrary code. A dataclass is rebuilt field by field without
calling its ``__init__``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import sys
import uuid
from decimal import Decimal
from typing import Any

__all__ = ["TAG", "from_plain", "to_plain"]

TAG = "\x00t"


def _tagged(tag: str, payload: Any) -> dict[str, Any]:
    return {TAG: [tag, payload]}


def _path_error(value: Any, path: str) -> TypeError:
    kind = type(value)
    return TypeError(
        f"{kind.__module__}.{kind.__qualname__} at {path or 'the top level'} cannot be serialized"
    )


def _type_name(kind: type, path: str) -> str:
    name = f"{kind.__module__}:{kind.__qualname__}"
    if "<locals>" in kind.__qualname__:
        raise TypeError(
            f"{kind.__module__}.{kind.__qualname__} at {path or 'the top level'} is defined "
            "inside a function, so a cached copy could not be decoded; define it at module level"
        )
    return name


def _tz(value: dt.tzinfo | None, path: str) -> Any:
    if value is None:
        return None
    key = getattr(value, "key", None)  # zoneinfo.ZoneInfo
    if isinstance(key, str):
        return key
    if isinstance(value, dt.timezone):
        offset = value.utcoffset(None)
        return [offset.days, offset.seconds, offset.microseconds]
    raise TypeError(
        f"a {type(value).__qualname__} time zone at {path or 'the top level'} cannot be "
        "serialized (use datetime.timezone or zoneinfo.ZoneInfo)"
    )


def to_plain(value: Any, path: str = "") -> Any:
    """``value`` as a JSON-able tree, tagged where JSON would change its type.

    Raises:
        TypeError: Something in ``value`` has no faithful encoding.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is list:
        return [to_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind is dict:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: to_plain(v, f"{path}[{k!r}]") for k, v in value.items()}
        return _tagged(
            "dict",
            [
                [to_plain(k, f"{path}<key>"), to_plain(v, f"{path}[{k!r}]")]
                for k, v in value.items()
            ],
        )
    if kind is tuple:
        return _tagged("tuple", [to_plain(item, f"{path}[{i}]") for i, item in enumerate(value)])
    return _other(value, kind, path)


def _other(value: Any, kind: type, path: str) -> Any:
    if kind is set or kind is frozenset:
        items = [to_plain(item, f"{path}<member>") for item in value]
        return _tagged(kind.__name__, items)
    if kind is bytes:
        return _tagged("bytes", base64.b64encode(value).decode("ascii"))
    if kind is Decimal:
        return _tagged("decimal", str(value))
    if kind is uuid.UUID:
        return _tagged("uuid", str(value))
    if kind is dt.datetime:
        return _tagged(
            "datetime",
            [value.replace(tzinfo=None).isoformat(), _tz(value.tzinfo, path), value.fold],
        )
    if kind is dt.date:
        return _tagged("date", value.isoformat())
    if kind is dt.time:
        return _tagged(
            "time", [value.replace(tzinfo=None).isoformat(), _tz(value.tzinfo, path), value.fold]
        )
    if kind is dt.timedelta:
        return _tagged("timedelta", [value.days, value.seconds, value.microseconds])
    if isinstance(value, enum.Enum):
        return _tagged("enum", [_type_name(kind, path), to_plain(value.value, f"{path}.value")])
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: to_plain(getattr(value, f.name), f"{path}.{f.name}")
            for f in dataclasses.fields(value)
        }
        return _tagged("dataclass", [_type_name(kind, path), fields])
    raise _path_error(value, path)


def _resolve(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    target: Any = sys.modules.get(module_name)
    if target is None:
        raise ValueError(f"module {module_name!r} is not imported")
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _rebuild_dataclass(name: str, fields: dict[str, Any]) -> Any:
    kind = _resolve(name)
    if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
        raise ValueError(f"{name} is not a dataclass")
    declared = {f.name for f in dataclasses.fields(kind)}
    if set(fields) != declared:
        raise ValueError(f"{name} fields changed: {sorted(fields)} vs {sorted(declared)}")
    instance = object.__new__(kind)
    for field_name, field_value in fields.items():
        object.__setattr__(instance, field_name, from_plain(field_value))
    return instance


def _zone(value: Any) -> dt.tzinfo | None:
    if value is None:
        return None
    if isinstance(value, str):
        from zoneinfo import ZoneInfo

        return ZoneInfo(value)
    days, seconds, micro = value
    return dt.timezone(dt.timedelta(days=days, seconds=seconds, microseconds=micro))


def _decode_tag(tag: str, payload: Any) -> Any:
    if tag == "tuple":
        return tuple(from_plain(item) for item in payload)
    if tag == "dict":
        return {from_plain(k): from_plain(v) for k, v in payload}
    if tag == "set":
        return {from_plain(item) for item in payload}
    if tag == "frozenset":
        return frozenset(from_plain(item) for item in payload)
    if tag == "bytes":
        return base64.b64decode(payload.encode("ascii"), validate=True)
    if tag == "decimal":
        return Decimal(payload)
    if tag == "uuid":
        return uuid.UUID(payload)
    if tag == "datetime":
        text, zone, fold = payload
        return dt.datetime.fromisoformat(text).replace(tzinfo=_zone(zone), fold=fold)
    if tag == "date":
        return dt.date.fromisoformat(payload)
    if tag == "time":
        text, zone, fold = payload
        return dt.time.fromisoformat(text).replace(tzinfo=_zone(zone), fold=fold)
    if tag == "timedelta":
        days, seconds, micro = payload
        return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
    if tag == "enum":
        name, raw = payload
        kind = _resolve(name)
        if not (isinstance(kind, type) and issubclass(kind, enum.Enum)):
            raise ValueError(f"{name} is not an Enum")
        return kind(from_plain(raw))
    if tag == "dataclass":
        name, fields = payload
        return _rebuild_dataclass(name, fields)
    raise ValueError(f"unknown tag {tag!r}")


def from_plain(value: Any) -> Any:
    """The value [to_plain][resilience_kit.cache._tagged.to_plain] encoded.

    Raises:
        Exception: The tree is not one ``to_plain`` made (the entry is then a miss).
    """
    kind = type(value)
    if kind is list:
        return [from_plain(item) for item in value]
    if kind is dict:
        if TAG in value:
            if len(value) != 1:
                raise ValueError("a tagged object has other keys")
            tag, payload = value[TAG]
            return _decode_tag(tag, payload)
        return {k: from_plain(v) for k, v in value.items()}
    return value
