"""The metrics page lists exactly what the collector exports."""

from __future__ import annotations

from pathlib import Path

from resilience_kit.prometheus import exported_metrics, source_names

PAGE = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
START, END = "<!-- metrics-table:start -->", "<!-- metrics-table:end -->"
BUILT_IN = ("breakers", "retry", "cache", "sql", "health")


def metrics_table() -> str:
    """The table as the page shows it, generated from the collector."""
    rows = ["| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    for metric in exported_metrics():
        shown = metric.name if metric.kind == "histogram" else metric.sample_names[0]
        labels = ", ".join(f"`{label}`" for label in metric.labels)
        rows.append(f"| `{shown}` | {metric.kind} | {labels} | {metric.help} |")
    return "\n".join(rows)


def test_the_metrics_page_lists_every_exported_metric() -> None:
    assert set(source_names()) == set(BUILT_IN), "only the library's own sources"
    text = PAGE.read_text()
    listed = text[text.index(START) + len(START) : text.index(END)].strip()
    expected = metrics_table()
    assert listed == expected, f"replace the table in docs/metrics.md with:\n{expected}"
