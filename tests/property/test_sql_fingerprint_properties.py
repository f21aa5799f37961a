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


# -- comments, MySQL strings, column positions --------------------------------------------------

# Comment text free of "*" and "/", so only the generated markers open or close a comment.
comment_text = st.text(st.characters(blacklist_characters="*/", codec="utf-8"), max_size=12)
nested_comments = st.recursive(
    comment_text.map(lambda text: f"/*{text}*/"),
    lambda inner: st.tuples(comment_text, inner, comment_text).map(
        lambda parts: f"/*{parts[0]}{parts[1]}{parts[2]}*/"
    ),
    max_leaves=6,
)


@given(names, names, literals, nested_comments, st.integers(0, 3))
def test_nested_comments_anywhere_between_tokens_change_nothing(
    table: str, column: str, value: str, comment: str, slot: int
) -> None:
    words = ["SELECT", column, "FROM", table, f"WHERE {column} =", value]
    plain = " ".join(words)
    words.insert(slot + 1, comment)
    assert fingerprint(" ".join(words)) == fingerprint(plain)


def mysql_quoted(text: str, quote: str) -> str:
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return quote + escaped + quote


@given(names, names, st.text(max_size=30), st.sampled_from(["'", '"']), literals)
def test_a_mysql_string_with_any_content_is_one_value_that_never_leaks(
    table: str, column: str, content: str, quote: str, other: str
) -> None:
    # "§" is no name, keyword or operator the statement has: if it shows, the literal leaked.
    literal = mysql_quoted("§" + content + "§", quote)
    sql = f"SELECT {column} FROM {table} WHERE {column} = {literal} AND b = {other}"
    shape = fingerprint(sql, dialect="mysql")
    assert shape == fingerprint(
        f"SELECT {column} FROM {table} WHERE {column} = ? AND b = ?", dialect="mysql"
    )
    assert "§" not in shape


@given(st.text(max_size=300), st.sampled_from([None, "mysql", "postgresql", "sqlite"]))
def test_no_input_crashes_any_dialect(sql: str, dialect: str | None) -> None:
    once = fingerprint(sql, dialect=dialect)
    assert fingerprint(sql, dialect=dialect) == once


@given(
    names,
    st.lists(st.integers(1, 20), min_size=1, max_size=4),
    st.lists(st.integers(1, 20), min_size=1, max_size=4),
    numbers,
    numbers,
)
def test_order_by_positions_are_structure_and_limits_are_values(
    table: str, order_a: list[int], order_b: list[int], limit_a: str, limit_b: str
) -> None:
    def query(order: list[int], limit: str) -> str:
        positions = ", ".join(map(str, order))
        return f"SELECT a, b FROM {table} GROUP BY {positions} ORDER BY {positions} LIMIT {limit}"

    a = fingerprint(query(order_a, limit_a))
    b = fingerprint(query(order_b, limit_b))
    assert (a == b) == (order_a == order_b)
