"""contrib/: the Grafana dashboard and the alert rules use only metrics the collector exports,
their PromQL is valid, and the alerts fire when they should (promtool)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from resilience_kit.prometheus import exported_metrics

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "contrib" / "grafana" / "resilience_kit.json"
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "contrib" / "prometheus" / "alerts_test.yml"
METRIC = re.compile(r"\bresilience_kit_[a-z0-9_]+")
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$job": ".*", "$breaker": ".*"}


def exported_sample_names() -> set[str]:
    return {name for metric in exported_metrics() for name in metric.sample_names}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    expressions += [
        variable["definition"]
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]
    return expressions


def test_the_dashboard_uses_only_exported_metrics() -> None:
    referenced = {name for expr in dashboard_expressions() for name in METRIC.findall(expr)}
    assert referenced, "the dashboard should query resilience_kit metrics"
    assert referenced <= exported_sample_names(), referenced - exported_sample_names()


def test_the_alert_rules_use_only_exported_metrics() -> None:
    referenced = set(METRIC.findall(ALERTS.read_text()))
    assert referenced <= exported_sample_names(), referenced - exported_sample_names()
    assert "resilience_kit_breaker_state" in referenced


def test_the_dashboard_has_the_panels_the_issue_asks_for() -> None:
    titles = {panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]}
    wanted = ("Breaker state", "Transitions by state entered", "Rejection rate", "Retry rate")
    for title in (*wanted, "Cache hit rate", "Slow-query share", "Query p95", "Pool saturation"):
        assert title in titles


def test_the_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    rules = []
    for number, query in enumerate(dashboard_expressions()):
        if query.startswith("label_values("):
            continue  # a Grafana function, not PromQL
        expr = query
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:panel_{number}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # JSON is YAML
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout.decode()


def test_promtool_checks_and_tests_the_alert_rules(promtool: str) -> None:
    check = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    tested = subprocess.run(
        [promtool, "test", "rules", str(ALERT_TESTS)], capture_output=True, check=False
    )
    assert tested.returncode == 0, tested.stdout.decode() + tested.stderr.decode()
