"""Serializers and the entry header: faithful types, clear refusals, corrupt entries rejected."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest

from resilience_kit.cache import JsonSerializer, MsgpackSerializer, PickleSerializer
from resilience_kit.cache._frame import CorruptEntry, Entry, pack, unpack
from resilience_kit.errors import ConfigurationError

SECRET = "s" * 32


class Level(enum.Enum):
    LOW = "low"


@dataclasses.dataclass(frozen=True)
class Address:
    city: str
    zip: tuple[int, ...]


@dataclasses.dataclass
class User:
    id: uuid.UUID
    balance: Decimal
    joined: dt.date
    address: Address
    level: Level
    tags: frozenset[str]
    seen: dt.datetime | None = None


SERIALIZERS = [JsonSerializer(), MsgpackSerializer(), PickleSerializer(secret=SECRET)]
VALUES: list[Any] = [
    None,
    0,
    -(2**62),
    1.5,
    "héllo\n\x00",
    [1, "a", None],
    {"a": {"b": [1, 2]}},
    (1, (2, 3)),
    [(1, 2)],
    {1: "int key", (1, 2): "tuple key"},
    {"\x00t": "looks like a tag"},
    {1, 2},
    frozenset({"a"}),
    b"\x00\xff",
    Decimal("1.10"),
    uuid.UUID(int=7),
    dt.date(2024, 2, 29),
    dt.datetime(2024, 2, 29, 12, 0, 1, 5),
    dt.datetime(2024, 2, 29, 12, tzinfo=dt.timezone(dt.timedelta(hours=3))),
    dt.datetime(2024, 11, 3, 1, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York"), fold=1),
    dt.time(1, 2, 3),
    dt.timedelta(days=-1, seconds=5),
    Level.LOW,
    User(
        uuid.UUID(int=1),
        Decimal("9.99"),
        dt.date(2020, 1, 1),
        Address("Oslo", (1, 2)),
        Level.LOW,
        frozenset({"x"}),
        dt.datetime(2024, 1, 1),
    ),
]


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=repr)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_round_trip_with_their_types(serializer: Any, value: Any) -> None:
    back = serializer.loads(serializer.dumps(value))
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        assert type(back.tzinfo) is type(value.tzinfo)
        assert back.fold == value.fold


@pytest.mark.parametrize("serializer", SERIALIZERS[:2], ids=repr)
@pytest.mark.parametrize("value", [object(), [1, object()], {"a": 1j}, lambda: 1], ids=repr)
def test_unencodable_values_raise_type_error_naming_the_type(serializer: Any, value: Any) -> None:
    with pytest.raises(TypeError, match="cannot be serialized"):
        serializer.dumps(value)


def test_classes_defined_in_functions_are_refused_at_encoding() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(TypeError, match="defined inside a function"):
        JsonSerializer().dumps(Local(1))


def test_huge_ints_are_refused_not_mangled() -> None:
    with pytest.raises(TypeError):
        MsgpackSerializer().dumps(2**70)
    assert JsonSerializer().loads(JsonSerializer().dumps(2**70)) == 2**70


def test_decoding_never_imports_or_builds_other_types() -> None:
    crafted = b't{"\\u0000t":["dataclass",["os:system",{}]]}'
    with pytest.raises(Exception, match=r"not a dataclass|not imported|fields"):
        JsonSerializer().loads(crafted)
    crafted = b't{"\\u0000t":["enum",["never_imported_module:X",1]]}'
    with pytest.raises(ValueError, match="not imported"):
        JsonSerializer().loads(crafted)


def test_pickle_needs_a_real_secret() -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        PickleSerializer(secret="short")  # noqa: S106
    assert "s" * 8 not in repr(PickleSerializer(secret=SECRET))


def test_pickle_refuses_forged_or_altered_payloads() -> None:
    mine = PickleSerializer(secret=SECRET)
    theirs = PickleSerializer(secret="t" * 32)
    data = mine.dumps({"a": 1})
    with pytest.raises(ValueError, match="signature"):
        theirs.loads(data)
    altered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(ValueError, match="signature"):
        mine.loads(altered)
    with pytest.raises(ValueError, match="signature"):
        mine.loads(data[:10])


def test_pickle_refusal_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        PickleSerializer(secret=SECRET).dumps(lambda: 1)


def entry(value: Any) -> Entry:
    return Entry(value, 3, 10.0, 20.0, 0.5)


def test_frames_carry_generation_times_and_compression() -> None:
    serializer = JsonSerializer()
    big = {"text": "a" * 5000}
    framed = pack(entry(big), serializer, serializer.dumps(big), 1024)
    assert len(framed) < 1000
    assert unpack(framed, serializer) == entry(big)
    small = pack(entry(1), serializer, serializer.dumps(1), 1024)
    assert unpack(small, serializer) == entry(1)
    assert unpack(pack(entry(big), serializer, serializer.dumps(big), None), serializer) == entry(
        big
    )


def test_foreign_truncated_or_corrupt_frames_are_rejected() -> None:
    json_s, msgpack_s = JsonSerializer(), MsgpackSerializer()
    framed = pack(entry([1]), json_s, json_s.dumps([1]), None)
    with pytest.raises(CorruptEntry, match="format"):
        unpack(framed, msgpack_s)
    for cut in range(len(framed)):
        with pytest.raises(CorruptEntry):
            unpack(framed[:cut], json_s)
    for bad in (b"", b"[1]", "text", None, 5, b"RK" + b"\x00" * 40):
        with pytest.raises(CorruptEntry):
            unpack(bad, json_s)


@pytest.mark.parametrize("value", [12345, 1.5, -7, "text", [1, 22]], ids=repr)
def test_a_truncated_or_extended_payload_is_rejected_even_when_it_would_decode(value: Any) -> None:
    serializer = JsonSerializer()
    framed = pack(entry(value), serializer, serializer.dumps(value), None)
    for cut in range(len(framed)):
        with pytest.raises(CorruptEntry):
            unpack(framed[:cut], serializer)
    with pytest.raises(CorruptEntry):
        unpack(framed + b"0", serializer)  # "123450": JSON would decode it too


def test_a_decompression_bomb_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    from resilience_kit.cache import _frame

    monkeypatch.setattr(_frame, "MAX_DECOMPRESSED", 10_000)
    serializer = JsonSerializer()
    # A well-formed entry (compressed, its checksum right) that inflates past the limit.
    bomb = pack(entry(0), serializer, b"p" + b"0" * (_frame.MAX_DECOMPRESSED + 10), 0)
    assert len(bomb) < 200
    with pytest.raises(CorruptEntry, match=r"compressed data truncated or too large"):
        unpack(bomb, serializer)


@pytest.mark.parametrize("value", [12345, 1.5, "text", [1, 22], {"a": 1}], ids=repr)
def test_a_changed_byte_in_an_uncompressed_payload_is_rejected_even_when_it_would_decode(
    value: Any,
) -> None:
    for serializer in (JsonSerializer(), MsgpackSerializer()):
        framed = pack(entry(value), serializer, serializer.dumps(value), None)
        for at in range(len(framed)):
            for replacement in {framed[at] ^ 0x01, framed[at] ^ 0x08, ord("8")} - {framed[at]}:
                changed = framed[:at] + bytes([replacement]) + framed[at + 1 :]
                with pytest.raises(CorruptEntry):
                    unpack(changed, serializer)
