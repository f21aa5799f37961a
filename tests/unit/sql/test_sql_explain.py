"""Which slow statements explain_slow may EXPLAIN (the runs themselves: tests/integration)."""

from __future__ import annotations

import pytest

from resilience_kit.sql import fingerprint
from resilience_kit.sql._explain import is_read_only_select


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM t WHERE id = 1",
        "  select a, b from t join u on t.id = u.t_id",
        "WITH recent AS (SELECT * FROM t) SELECT count(*) FROM recent",
    ],
)
def test_reads_are_explained(sql: str) -> None:
    assert is_read_only_select(fingerprint(sql))


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t SELECT * FROM u",
        "UPDATE t SET a = 1",
        "DELETE FROM t",
        "SELECT * FROM t FOR UPDATE",
        "SELECT * INTO backup FROM t",
        "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
        "SELECT nextval('seq')",
        "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE",
        "CREATE TABLE t (a int)",
        "LOCK TABLE t",
    ],
)
def test_writes_and_locks_never_are(sql: str) -> None:
    assert not is_read_only_select(fingerprint(sql))
