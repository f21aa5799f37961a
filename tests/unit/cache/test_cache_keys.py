"""Keys: canonical, type-tagged, escaped, confined to their prefix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import pytest

from resilience_kit.cache._keys import DIGEST_HEX, KeyBuilder, check_name, key_part
from resilience_kit.errors import ConfigurationError


def builder(fn: Any, **options: Any) -> KeyBuilder:
    return KeyBuilder(fn, head="{p}", **options)


def test_positional_keyword_and_default_calls_share_a_key() -> None:
    def f(x: int, y: str = "a", *, z: int = 3) -> None: ...

    keys = builder(f)
    expected = keys.build((1,), {})
    assert expected is not None
    assert keys.build((), {"x": 1}) == expected
    assert keys.build((1, "a"), {}) == expected
    assert keys.build((1,), {"y": "a", "z": 3}) == expected
    assert keys.build((1,), {"z": 4}) != expected


def test_values_of_different_types_never_share_a_key() -> None:
    def f(x: object) -> None: ...

    keys = builder(f)
    values: list[object] = [
        1,
        "1",
        1.0,
        True,
        None,
        b"1",
        (1,),
        [1],
        {1},
        frozenset({1}),
        Decimal(1),
    ]
    built = {keys.build((v,), {}) for v in values}
    assert len(built) == len(values)


def test_the_key_reads_namespace_prefix_parts_digest() -> None:
    def f(user: int, name: str, flag: bool) -> None: ...

    key = builder(f).build((42, "bob", True), {})
    assert key is not None
    head, user, name, flag, digest = key.split(":")
    assert (head, user, name, flag) == ("{p}", "42", "bob", "_")
    assert len(digest) == DIGEST_HEX
    assert all(c in "0123456789abcdef" for c in digest)


HOSTILE = [
    "*",
    "?",
    "[a-z]",
    "{p}",
    "}",
    "{",
    ":",
    "a:b",
    "\n",
    "\\",
    "%",
    "%2A",
    "",
    " ",
    "é",
    "日本",
    "\ud800",
    "x" * 10_000,
    "x" * 10_001,
    "*" * 64,
    "*" * 65,
    "_",
    "+",
]


def test_hostile_strings_are_escaped_and_never_collide() -> None:
    def f(x: str) -> None: ...

    keys = builder(f)
    built = [keys.build((s,), {}) for s in HOSTILE]
    assert len(set(built)) == len(HOSTILE)
    for key in built:
        assert key is not None
        rest = key[len("{p}:") :]
        assert not set(rest) & set("*?[]{}\\\n \x00"), key
        assert rest.count(":") == 1
        assert len(key) < 200


def test_tuples_of_strings_with_separators_do_not_collide() -> None:
    def f(a: str, b: str) -> None: ...

    keys = builder(f)
    assert keys.build(("a:b", "c"), {}) != keys.build(("a", "b:c"), {})
    assert keys.build(("ab", ""), {}) != keys.build(("a", "b"), {})


def test_self_and_cls_are_left_out_unless_asked() -> None:
    class Service:
        def get(self, x: int) -> None: ...

    one, two = Service(), Service()
    keys = builder(Service.get)
    assert keys.build((one, 1), {}) == keys.build((two, 1), {})

    class Keyed:
        def __init__(self, n: int) -> None:
            self.n = n

        def __cache_key__(self) -> int:
            return self.n

        def get(self, x: int) -> None: ...

    with_self = builder(Keyed.get, include_self=True)
    assert with_self.build((Keyed(1), 1), {}) != with_self.build((Keyed(2), 1), {})
    assert with_self.build((Keyed(1), 1), {}) == with_self.build((Keyed(1), 1), {})


def test_an_unencodable_argument_names_the_parameter() -> None:
    def lookup(user_id: int, session: object) -> None: ...

    with pytest.raises(TypeError, match=r"lookup\(\): parameter 'session' is a builtins.object"):
        builder(lookup).build((1, object()), {})
    with pytest.raises(TypeError, match=r"parameter 'items'.*holds a builtins.object"):
        builder(lambda items: None).build(([object()],), {})


def test_exclude_leaves_parameters_out() -> None:
    def lookup(user_id: int, session: object) -> None: ...

    keys = builder(lookup, exclude=("session",))
    assert keys.build((1, object()), {}) == keys.build((1, object()), {})
    with pytest.raises(ConfigurationError, match="nope"):
        builder(lookup, exclude=("nope",))


def test_arguments_that_do_not_fit_give_no_key() -> None:
    def f(x: int) -> None: ...

    keys = builder(f)
    assert keys.build((), {}) is None
    assert keys.build((1, 2), {}) is None
    assert keys.build((1,), {"x": 1}) is None
    assert keys.build((), {"y": 1}) is None


def test_var_args_and_kwargs_are_part_of_the_key() -> None:
    def f(a: int, *rest: int, **options: str) -> None: ...

    keys = builder(f)
    assert keys.build((1, 2), {}) != keys.build((1, 3), {})
    assert keys.build((1,), {"x": "1"}) != keys.build((1,), {"x": "2"})
    assert keys.build((1,), {"x": "1", "y": "2"}) == keys.build((1,), {"y": "2", "x": "1"})


class Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


def test_rich_argument_types_have_stable_keys() -> None:
    def f(x: object) -> None: ...

    keys = builder(f)
    samples = [
        dt.datetime(2024, 1, 2, 3, 4, 5),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        dt.date(2024, 1, 2),
        dt.time(3, 4),
        dt.timedelta(seconds=5),
        uuid.UUID(int=5),
        Decimal("1.10"),
        Decimal("1.1"),
        Colour.RED,
        Point(1, 2),
        {"b": 1, "a": 2},
        2.5,
        -0.0,
        0.0,
    ]
    first = [keys.build((s,), {}) for s in samples]
    assert first == [keys.build((s,), {}) for s in samples]
    assert len(set(first)) == len(samples)
    assert keys.build(({"a": 2, "b": 1},), {}) == keys.build(({"b": 1, "a": 2},), {})


def test_a_custom_key_is_escaped_and_hashed_inside_the_prefix() -> None:
    def f(x: int) -> None: ...

    keys = KeyBuilder(f, head="{p}", custom=lambda x: f"user:{x}*")
    key = keys.build((1,), {})
    assert key is not None
    assert key.startswith("{p}:user%3A1%2A:")
    with pytest.raises(TypeError, match="must return a str"):
        KeyBuilder(f, head="{p}", custom=lambda x: x).build((1,), {})


@pytest.mark.parametrize("bad", ["", "a b", "a*", "{a}", "a::b", ":a", "a:", 5, "é"])
def test_names_are_checked(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        check_name("prefix", bad)


def test_key_part_matches_the_key() -> None:
    assert key_part(42) == "42"
    assert key_part("a*b") == "a%2Ab"
    assert key_part(1.5) == "_"
    assert key_part(True) == "_"
