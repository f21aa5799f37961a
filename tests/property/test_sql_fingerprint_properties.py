# ruff: noqa: S608, PLR0917  (statements are built from generated names on purpose)
"""Fingerprint properties: values never split a statement's row, names always do."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience_kit.sql import fingerprint

KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "is", "null", "true", "false", "as",
    "on", "by", "order", "group", "limit", "offset", "values", "insert", "into", "update", "set",
    "delete", "join", "like", "between", "case", "when", "then", "else", "end", "array", "any",
}  # fmt: skip
names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in KEYWORDS and not n.startswith(("e_", "x_", "b_", "n_"))
)
numbers = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False)
    .map(repr)
    .filter(lambda s: "e" in s or "." in s),
)
strings = st.text(max_size=20).map(lambda s: "'" + s.replace("'", "''") + "'")
literals = st.one_of(numbers, strings, st.sampled_from(["TRUE", "FALSE", ":p", "?", "%s", "$1"]))
literal_lists = st.lists(literals, min_size=1, max_size=6)


def statement(table: str, column: str, filter_column: str, value: str, values: list[str]) -> str:
    return (
        f"SELECT {column}, count(*) FROM {table} WHERE {filter_column} = {value} "
        f"AND {column} IN ({', '.join(values)}) GROUP BY {column}"
    )


@given(names, names, names, literals, literal_lists, literals, literal_lists)
def test_statements_differing_only_in_literals_share_a_fingerprint(
    table: str,
    column: str,
    filter_column: str,
    value_a: str,
    list_a: list[str],
    value_b: str,
    list_b: list[str],
) -> None:
    assert fingerprint(statement(table, column, filter_column, value_a, list_a)) == fingerprint(
        statement(table, column, filter_column, value_b, list_b)
    )


@given(st.lists(st.lists(literals, min_size=2, max_size=2), min_size=1, max_size=5), names)
def test_multi_row_values_share_a_fingerprint(rows: list[list[str]], table: str) -> None:
    body = ", ".join(f"({a}, {b})" for a, b in rows)
    assert fingerprint(f"INSERT INTO {table} (a, b) VALUES {body}") == fingerprint(
        f"INSERT INTO {table} (a, b) VALUES (?, ?)"
    )


@given(names, names, names, names, literals)
def test_different_tables_or_columns_never_share(
    table_a: str, table_b: str, column_a: str, column_b: str, value: str
) -> None:
    a = fingerprint(statement(table_a, column_a, "f", value, [value]))
    b = fingerprint(statement(table_b, column_b, "f", value, [value]))
    assert (a == b) == (table_a == table_b and column_a == column_b)
    c = fingerprint(statement(table_a, column_a, column_b, value, [value]))
    d = fingerprint(statement(table_a, column_a, column_a, value, [value]))
    assert (c == d) == (column_a == column_b)


@given(st.text(max_size=300))
def test_no_input_crashes_and_the_result_is_stable(sql: str) -> None:
    once = fingerprint(sql)
    assert isinstance(once, str)
    assert fingerprint(sql) == once


@given(st.lists(st.sampled_from(["'", '"', "$$", "--", "/*", "*/", "(", ")", "[", "]", ",",
                                 "?", "-", "1", "a", " ", "\n", ":", "::", "$1", "`", "E'"]),
                max_size=60).map("".join))  # fmt: skip
def test_no_punctuation_soup_crashes(sql: str) -> None:
    assert isinstance(fingerprint(sql), str)


@pytest.mark.parametrize("size", [10, 10_000])
def test_in_lists_of_any_length_share(size: int) -> None:
    values = ", ".join(str(i) for i in range(size))
    assert (
        fingerprint(f"SELECT a FROM t WHERE b IN ({values})") == "select a from t where b in (...)"
    )
