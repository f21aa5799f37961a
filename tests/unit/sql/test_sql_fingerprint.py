"""Fingerprint rules, one example each (the properties are in tests/property)."""

from __future__ import annotations

import pytest

from resilience_kit.sql import fingerprint
from resilience_kit.sql._fingerprint import FingerprintCache, has_literals


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE id = 42", "select * from t where id = ?"),
        ("select *\n\tfrom   T where ID=%(id_1)s", "select * from t where id = ?"),
        (
            "SELECT a FROM t WHERE b = 'it''s' AND c = E'x\\'y'",
            "select a from t where b = ? and c = ?",
        ),
        ("SELECT $$body$$, $tag$x$tag$, 1.5e-3, .5, 0xff", "select ?, ?, ?, ?, ?"),
        ("SELECT a FROM t WHERE b = -1 AND c = ?", "select a from t where b = ? and c = ?"),
        ("SELECT a - 1 FROM t", "select a - ? from t"),
        ("SELECT :name, $1, %s, ?", "select ?, ?, ?, ?"),
        ("SELECT x::int, :y::text", "select x::int, ?::text"),
        ("SELECT a FROM t WHERE d = TRUE OR e IS NULL", "select a from t where d = ? or e is null"),
        ("SELECT 1 -- trailing\n/* block */ FROM t", "select ? from t"),
        ("SELECT * FROM t WHERE id IN (1, 2, 3)", "select * from t where id in (...)"),
        ("SELECT * FROM t WHERE id IN (?)", "select * from t where id in (...)"),
        (
            "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))",
            "select * from t where (a, b) in (...)",
        ),
        (
            "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
            "insert into t(a, b) values (...)",
        ),
        ("INSERT INTO t (a, b) VALUES (?, ?)", "insert into t(a, b) values (...)"),
        ("SELECT ARRAY[1, 2], a[3] FROM t", "select array[...], a[...] from t"),
        ('SELECT "Name", `key`, [Order] FROM "User"', 'select "Name", `key`, [Order] from "User"'),
        ("SELECT count(*) FROM t", "select count(*) from t"),
        ("SELECT round(1.5, 2), pg_sleep(%(s)s) FROM t", "select round(?, ?), pg_sleep(?) from t"),
    ],
)
def test_rules(sql: str, expected: str) -> None:
    assert fingerprint(sql) == expected


def test_a_dollar_quoted_body_ends_only_at_its_own_tag() -> None:
    # "$$" or another tag inside "$pw$...$pw$" is body text: nothing of it may reach the
    # fingerprint (which is logged and served even with log_parameters off).
    sql = "SELECT $pw$ hunter$$2 secret $q$ x $pw$, $q$ a $$ b $q$ FROM t"
    assert fingerprint(sql) == "select ?, ? from t"
    assert fingerprint(sql) == fingerprint("SELECT $pw$other$pw$, $q$$q$ FROM t")


@pytest.mark.parametrize("sql", ["'unterminated", "/* open", '"open', "$$open", "", "   ", "((("])
def test_broken_text_still_gets_a_fingerprint(sql: str) -> None:
    assert isinstance(fingerprint(sql), str)


def test_quoted_identifiers_keep_their_case_unquoted_ones_do_not() -> None:
    assert fingerprint('SELECT a FROM "Users"') != fingerprint('SELECT a FROM "users"')
    assert fingerprint("SELECT a FROM Users") == fingerprint("SELECT a FROM users")


def test_has_literals() -> None:
    assert has_literals("SELECT 1")
    assert has_literals("SELECT a FROM t WHERE b = 'x'")
    assert not has_literals("SELECT a FROM t1 WHERE b = :b AND c = ?")


def test_cache_parses_each_text_once_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from resilience_kit.sql import _fingerprint

    parsed: list[str] = []
    real = _fingerprint.fingerprint
    monkeypatch.setattr(
        _fingerprint,
        "fingerprint",
        lambda sql, **options: parsed.append(sql) or real(sql, **options),
    )
    cache = FingerprintCache(max_entries=100)
    for _ in range(3):
        assert cache.get("SELECT 1") == "select ?"
    assert parsed == ["SELECT 1"]
    for i in range(1000):
        cache.get(f"SELECT {i}")
    assert len(cache) <= 100


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 /* a /* b */ c */ FROM t",
        "SELECT 1 /* a /* b /* c */ d */ e */ FROM t",
        "SELECT 1 /**/ FROM t",
    ],
)
def test_block_comments_nest_as_in_postgresql(sql: str) -> None:
    assert fingerprint(sql) == "select ? from t"


def test_an_inner_comment_opener_left_open_is_plain_text_as_in_sqlite_and_mysql() -> None:
    # SQLite and MySQL do not nest: "/* a /* b */" is one whole comment there. Read as nested
    # it would never end and swallow the statement, so an opener left open is not nesting.
    assert fingerprint("/* a /* b */ SELECT a FROM t WHERE b = 1") == (
        "select a from t where b = ?"
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t WHERE b = 'it\\'s' AND c = 1", "select a from t where b = ? and c = ?"),
        ("SELECT a FROM t WHERE b = 'x\\\\' AND c = 'y'", "select a from t where b = ? and c = ?"),
        (
            'SELECT a FROM t WHERE b = "say \\"hi\\"" AND c = 1',
            "select a from t where b = ? and c = ?",
        ),
        (
            "SELECT a FROM t WHERE b = 'it''s' # note\n AND c = 1",
            "select a from t where b = ? and c = ?",
        ),
        ("SELECT `key` FROM t /* a /* b */ WHERE c = 1", "select `key` from t where c = ?"),
    ],
)
def test_mysql_rules(sql: str, expected: str) -> None:
    assert fingerprint(sql, dialect="mysql") == expected
    assert fingerprint(sql, dialect="mariadb") == expected


def test_a_backslash_escape_never_leaks_the_rest_of_a_mysql_string() -> None:
    assert "secret" not in fingerprint("SELECT a FROM t WHERE pw = 'x\\'secret'", dialect="mysql")


def test_backslashes_are_plain_characters_in_standard_strings() -> None:
    # PostgreSQL (standard_conforming_strings, the default since 9.1) and SQLite: 'C:\' is
    # a whole string, and the value after it is a value.
    assert fingerprint("SELECT 'C:\\', 'x' FROM t") == "select ?, ? from t"
    assert fingerprint("SELECT 'C:\\', 'x' FROM t", dialect="postgresql") == "select ?, ? from t"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a, b FROM t ORDER BY 2", "select a, b from t order by 2"),
        ("SELECT a, b FROM t ORDER BY 1, 2 DESC", "select a, b from t order by 1, 2 desc"),
        ("SELECT a, count(*) FROM t GROUP BY 1", "select a, count(*) from t group by 1"),
        ("SELECT a FROM t ORDER BY a, 2 LIMIT 10", "select a from t order by a, 2 limit ?"),
        ("SELECT a FROM t ORDER BY 1 LIMIT 5, 10", "select a from t order by 1 limit ?, ?"),
        (
            "SELECT a FROM t ORDER BY coalesce(a, 0), 1",
            "select a from t order by coalesce(a, ?), 1",
        ),
        (
            "SELECT (SELECT b FROM u ORDER BY 1 LIMIT 1) FROM t WHERE c = 3",
            "select (select b from u order by 1 limit ?) from t where c = ?",
        ),
        ("SELECT a FROM t ORDER BY :p", "select a from t order by ?"),
    ],
)
def test_positional_order_and_group_by_references_are_structure(sql: str, expected: str) -> None:
    assert fingerprint(sql) == expected


def test_order_by_1_and_order_by_2_are_different_statements() -> None:
    assert fingerprint("SELECT a, b FROM t ORDER BY 1") != fingerprint(
        "SELECT a, b FROM t ORDER BY 2"
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a) , 42", "select a), ?"),
        ("SELECT a FROM t ORDER BY 1) , 9", "select a from t order by 1), ?"),
    ],
)
def test_an_unbalanced_parenthesis_never_makes_a_value_a_column_position(
    sql: str, expected: str
) -> None:
    assert fingerprint(sql) == expected
