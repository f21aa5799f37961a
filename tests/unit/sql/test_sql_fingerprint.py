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
    monkeypatch.setattr(_fingerprint, "fingerprint", lambda sql: parsed.append(sql) or real(sql))
    cache = FingerprintCache(max_entries=100)
    for _ in range(3):
        assert cache.get("SELECT 1") == "select ?"
    assert parsed == ["SELECT 1"]
    for i in range(1000):
        cache.get(f"SELECT {i}")
    assert len(cache) <= 100
