"""Properties of the cache's serializers, entry frames and keys (hypothesis)."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience_kit.cache import JsonSerializer, MsgpackSerializer, PickleSerializer, _frame
from resilience_kit.cache._frame import CorruptEntry, Entry, pack, unpack
from resilience_kit.cache._keys import KeyBuilder

SERIALIZERS = [JsonSerializer(), MsgpackSerializer(), PickleSerializer(secret="k" * 32)]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    st.binary(max_size=50),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.uuids(),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(dt.timezone.utc)),
    st.times(),
    st.timedeltas(),
)
hashables = st.one_of(
    scalars,
    st.tuples(scalars, scalars),
    st.frozensets(st.integers(-(2**63), 2**63 - 1), max_size=3),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.dictionaries(hashables, inner, max_size=3),
        st.sets(hashables, max_size=3),
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down (and -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@given(values)
def test_every_serializer_round_trips_values_and_types(value: Any) -> None:
    for serializer in SERIALIZERS:
        assert same(serializer.loads(serializer.dumps(value)), value), serializer


@given(values, st.integers(min_value=0, max_value=2**40), st.sampled_from([None, 0, 64]))
def test_frames_round_trip(value: Any, generation: int, compress_over: int | None) -> None:
    entry = Entry(value, generation, 1.5, 2.5, 0.25)
    for serializer in SERIALIZERS:
        back = unpack(pack(entry, serializer, serializer.dumps(value), compress_over), serializer)
        assert same(back.value, value)
        assert back[1:] == entry[1:]


def _decoded_or_rejected(data: bytes) -> None:
    for serializer in SERIALIZERS:
        with contextlib.suppress(CorruptEntry):
            unpack(data, serializer)


def _checksummed(rest: bytes) -> bytes:
    """``rest`` behind a current magic, version and a checksum that matches it."""
    return _frame._LEAD.pack(_frame.MAGIC, _frame._VERSION, zlib.crc32(rest)) + rest


@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_a_rejection(data: bytes) -> None:
    _decoded_or_rejected(data)
    _decoded_or_rejected(b"RK\x02\x01\x00" + data)  # the previous version's header
    _decoded_or_rejected(b"RK\x03" + data)
    _decoded_or_rejected(_checksummed(data))  # past the checksum: the rest must still hold


@given(values, st.sampled_from([None, 32]), st.data())
def test_truncated_or_altered_entries_are_rejected_or_exact(
    value: Any, compress_over: int | None, data: st.DataObject
) -> None:
    entry = Entry(value, 1, 1.0, 2.0, 0.0)
    for serializer in SERIALIZERS:
        framed = pack(entry, serializer, serializer.dumps(value), compress_over)
        cut = data.draw(st.integers(min_value=0, max_value=len(framed) - 1))
        with pytest.raises(CorruptEntry):  # the header records the payload's length
            unpack(framed[:cut], serializer)
        at = data.draw(st.integers(min_value=0, max_value=len(framed) - 1))
        changed = bytearray(framed)
        changed[at] ^= data.draw(st.integers(min_value=1, max_value=255))
        try:
            back = unpack(bytes(changed), serializer)
        except CorruptEntry:
            continue  # a miss (the decorator counts it as an error)
        assert same(back.value, value)  # never another value
        assert back[1:] == entry[1:]  # nor other times or another generation


keyable = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(),
        st.binary(max_size=20),
        st.uuids(),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner)),
    max_leaves=8,
)


def _f(a: object, b: object = None) -> None: ...


@given(keyable, keyable, keyable, keyable)
def test_keys_are_equal_exactly_when_the_arguments_are(a: Any, b: Any, c: Any, d: Any) -> None:
    keys = KeyBuilder(_f, head="{p}")
    one, two = keys.build((a, b), {}), keys.build((c,), {"b": d})
    assert (one == two) == (same(a, c) and same(b, d))
    assert one is not None
    assert not set(one[4:]) & set("*?[]{}\\\n ")
