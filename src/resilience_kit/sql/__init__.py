"""SQLAlchemy query monitoring: an in-process `pg_stat_statements` for any engine.

```python
import sqlalchemy
from resilience_kit.sql import install_query_monitor

engine = sqlalchemy.create_engine("sqlite://")
monitor = install_query_monitor(engine, slow_threshold=0.5)
with engine.connect() as connection:
    connection.execute(sqlalchemy.text("SELECT 1"))
print(monitor.to_dict())
```

Requires the `sqlalchemy` extra (`pip install resilience-kit-py[sqlalchemy]`); the documentation's
"Query monitor" page explains how to read the statistics.
"""

from __future__ import annotations

from resilience_kit.sql._env import engine_from_env
from resilience_kit.sql._fingerprint import fingerprint
from resilience_kit.sql._monitor import QueryMonitor, install_query_monitor, monitors
from resilience_kit.sql._scope import NPlusOne, QueryScope
from resilience_kit.sql._stats import (
    DURATION_BOUNDS,
    OTHER,
    DurationHistogram,
    PoolStats,
    QueryStats,
    StatementStats,
)

__all__ = [
    "install_query_monitor",
    "QueryMonitor",
    "monitors",
    "QueryStats",
    "StatementStats",
    "PoolStats",
    "DurationHistogram",
    "DURATION_BOUNDS",
    "QueryScope",
    "NPlusOne",
    "OTHER",
    "fingerprint",
    "engine_from_env",
]
