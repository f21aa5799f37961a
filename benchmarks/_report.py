"""Turning a run into the page (Markdown + SVG charts), a JSON record and a terminal summary."""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from benchmarks import _count
from benchmarks._harness import (
    CaseResult,
    GroupResult,
    InstructionTargetResult,
    RunSettings,
    SectionResult,
    TargetResult,
)
from benchmarks._svg import fmt_ns

DISTRIBUTIONS = (
    "resilience-kit-py",
    "pybreaker",
    "circuitbreaker",
    "purgatory",
    "aiobreaker",
    "pyresilience",
    "tenacity",
    "stamina",
    "backoff",
    "cashews",
    "aiocache",
    "redis",
    "SQLAlchemy",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-sqlalchemy",
)


@dataclass
class RunInfo:
    """Everything about a run that is not a figure."""

    settings: RunSettings
    started: datetime.datetime
    seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    timed: bool = True
    counted_calls: int = 0  # N of the instruction counts (N and 2N calls); 0 when not counted
    count_seconds: float = 0.0


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (zeros where the OS has none)."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def cpu_model() -> str:
    """The CPU's model name."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(redis_version: str | None) -> dict[str, str]:
    """CPU, cores, Python, OS and the servers' versions."""
    info = {
        "CPU": cpu_model(),
        "Cores": str(os.cpu_count()),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": platform.platform(),
        "SQLite": sqlite3.sqlite_version,
    }
    info["Redis server"] = redis_version or "not reachable"
    return info


def versions() -> dict[str, str]:
    """The installed version of every library measured."""
    out = {}
    for name in DISTRIBUTIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    if out["resilience-kit-py"] == "not installed":
        try:
            import resilience_kit

            out["resilience-kit-py"] = f"{resilience_kit.__version__} (source tree)"
        except ImportError:
            pass
    return out


# Formatting -----------------------------------------------------------------------------------


def fmt_ratio(value: float) -> str:
    """``1.23x``, ``12.3x``, ``123x``."""
    if value < 10:
        return f"{value:.2f}x"
    return f"{value:.1f}x" if value < 100 else f"{value:,.0f}x"


def fmt_count(value: float) -> str:
    """Instructions: ``1,234`` (whole; a difference keeps its sign)."""
    return f"{value:,.0f}"


def _added_count(group: GroupResult, case: CaseResult) -> str:
    added = group.added_instructions(case)
    return "-" if added is None or case.baseline else f"{added:+,.0f}"


def _count_ratio(group: GroupResult, case: CaseResult) -> str:
    ratio = group.instruction_ratio(case)
    return "-" if ratio is None else fmt_ratio(ratio)


def _status(case: CaseResult) -> str:
    if case.status == "unavailable":
        return f"unavailable: {case.reason}"
    return f"**FAILED**: {case.reason}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _verdict(target: TargetResult) -> str:
    if target.met is None:
        reason = target.case.reason if target.case is not None else "no such case"
        return f"not measured ({reason})"
    return "✅ met" if target.met else "❌ not met"


def _best_peer(target: TargetResult, results: Sequence[SectionResult]) -> str:
    for section in results:
        if section.section is not target.section:
            continue
        for group in section.groups:
            if group.group.key != target.target.group:
                continue
            peers = [
                c
                for c in group.cases
                if c.timed and not c.baseline and c.label != target.target.case
            ]
            if peers:
                best = min(peers, key=lambda c: c.added)
                return f"{best.label}: +{fmt_ns(best.added)} ns ({fmt_ratio(best.ratio)})"
    return "-"


def targets_table(targets: Sequence[TargetResult], results: Sequence[SectionResult]) -> list[str]:
    """The targets from the issues, met or not, with the figures."""
    rows = [
        "| Target | Limit (added ns) | Measured: added ns, median [IQR] | Ratio | Verdict "
        "| Best peer |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for target in targets:
        case = target.case
        if case is not None and case.timed:
            q1, q3 = case.added_iqr
            measured = f"+{fmt_ns(case.added)} [{fmt_ns(q1)}, {fmt_ns(q3)}]"
            ratio = fmt_ratio(case.ratio)
        else:
            measured, ratio = "-", "-"
        rows.append(
            f"| {target.target.title} | ≤ {fmt_ns(target.target.max_added_ns)} | {measured} | "
            f"{ratio} | {_cell(_verdict(target))} | {_cell(_best_peer(target, results))} |"
        )
    return rows


def _counted_verdict(target: InstructionTargetResult) -> str:
    if target.met is None:
        return f"not counted ({target.missing})"
    return "✅ met" if target.met else "❌ not met"


def instruction_targets_table(targets: Sequence[InstructionTargetResult]) -> list[str]:
    """The targets judged on instruction counts: the case's figure against its reference's."""
    rows = [
        "| Target | Limit | Case | Reference | Ratio | Verdict |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in targets:
        target = result.target
        sign = "+" if target.measure == "added" else ""

        def figure(value: float | None, group: str, case: str, sign: str = sign) -> str:
            shown = "-" if value is None else f"{sign}{fmt_count(value)}"
            return f"{shown} ({group} / {case})"

        ratio = "-" if result.ratio is None else f"{result.ratio:.2f}x"
        rows.append(
            f"| {_cell(target.title)} | {target.describe()} | "
            f"{_cell(figure(result.value, target.group, target.case))} | "
            f"{_cell(figure(result.reference, target.reference_group, target.reference_case))} | "
            f"{ratio} | {_cell(_counted_verdict(result))} |"
        )
    return rows


def group_table(group: GroupResult) -> list[str]:
    """One comparison: every case with its per-call time, added cost and ratio, and its
    instructions per call, added instructions and their ratio when they were counted."""
    counted = any(case.instructions is not None for case in group.cases)
    timed = any(case.timed for case in group.cases)
    head = ["Case"]
    if timed:
        head += ["ns per call", "Added ns over baseline", "Ratio", "Ratio IQR"]
    if counted:
        head += ["Instructions per call", "Added instructions", "Instructions ratio"]
    if timed:
        head += ["Calls per sample"]
    rows = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for case in group.cases:
        label = f"{case.label} (baseline)" if case.baseline else case.label
        if case.library == "resilience-kit-py":
            label = f"**{label}**"
        if not case.timed and case.instructions is None:
            rows.append(f"| {label} | {_cell(_status(case))} |" + " |" * (len(head) - 2))
            continue
        cells = [label]
        if timed and case.timed:
            q1, q3 = case.ratio_iqr
            added = "-" if case.baseline else f"+{fmt_ns(case.added)}"
            cells += [
                fmt_ns(case.median_ns),
                added,
                fmt_ratio(case.ratio),
                f"{fmt_ratio(q1)}, {fmt_ratio(q3)}",
            ]
        elif timed:
            cells += [_cell(_status(case)), "", "", ""]
        if counted and case.instructions is not None:
            cells += [
                fmt_count(case.instructions),
                _added_count(group, case),
                _count_ratio(group, case),
            ]
        elif counted:
            cells += [_cell(f"not counted: {case.count_problem or case.reason}"), "", ""]
        if timed:
            cells.append(f"{case.calls_per_sample:,}" if case.timed else "")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def pivot_table(groups: Sequence[GroupResult], x_label: str) -> list[str]:
    """Scaling sections: one row per library, one column per parameter value."""
    columns = [g.group.param for g in groups]
    header = " | ".join(f"{p:,.0f}" if p is not None else "" for p in columns)
    rows = [f"| Case / {x_label} | {header} |", "| --- |" + " ---: |" * len(columns)]
    labels: list[str] = []
    for group in groups:
        for case in group.cases:
            if case.label not in labels and not case.baseline:
                labels.append(case.label)
    baseline_cells = []
    for group in groups:
        base = group.baseline
        parts = []
        if base is not None and base.timed:
            parts.append(f"{fmt_ns(base.median_ns)} ns")
        if base is not None and base.instructions is not None:
            parts.append(f"{fmt_count(base.instructions)} instr")
        baseline_cells.append("; ".join(parts) or "-")
    rows.append("| baseline (per call) | " + " | ".join(baseline_cells) + " |")
    for label in labels:
        cells = []
        library = ""
        for group in groups:
            case = next((c for c in group.cases if c.label == label), None)
            if case is None:
                cells.append("")
            elif case.timed or case.instructions is not None:
                library = case.library
                parts = []
                if case.timed:
                    parts.append(f"{fmt_ratio(case.ratio)} (+{fmt_ns(case.added)} ns)")
                if case.instructions is not None:
                    parts.append(f"{_added_count(group, case)} instr")
                cells.append("; ".join(parts))
            else:
                library = case.library
                cells.append(_cell("unavailable" if case.status == "unavailable" else "**FAILED**"))
        name = f"**{label}**" if library == "resilience-kit-py" else label
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def spread(results: Sequence[SectionResult]) -> tuple[float, float, str]:
    """How much the rounds disagreed: the median and the largest interquartile range of the
    per-round ratios, relative to the median ratio, over every timed case (and the worst one)."""
    spreads = []
    for section in results:
        for group in section.groups:
            for case in group.cases:
                if case.timed and not case.baseline and len(case.ratios) > 1:
                    q1, q3 = case.ratio_iqr
                    spreads.append(((q3 - q1) / case.ratio, f"{group.group.title} / {case.label}"))
    if not spreads:
        return 0.0, 0.0, "-"
    worst = max(spreads)
    return statistics.median(s for s, _ in spreads), worst[0], worst[1]


def _longer_samples(results: Sequence[SectionResult], settings: RunSettings) -> str:
    """`` (100 ms for threads and tasks, ...)`` from the kinds' ``sample_factor``, or ``""``."""
    longer: dict[float, list[str]] = {}
    for section in results:
        for group in section.groups:
            kind = group.group.kind
            name = type(kind).__name__.lower()
            if kind.sample_factor != 1 and name not in longer.setdefault(kind.sample_factor, []):
                longer[kind.sample_factor].append(name)
    parts = [
        f"{settings.sample_seconds * factor * 1e3:.0f} ms for {' and '.join(names)}"
        for factor, names in sorted(longer.items())
    ]
    if not parts:
        return ""
    return f" ({'; '.join(parts)}, whose start-up would otherwise weigh)"


def _reasons(groups: Sequence[GroupResult]) -> list[str]:
    seen: dict[str, str] = {}
    for group in groups:
        for case in group.cases:
            if not case.timed and case.instructions is None and case.label not in seen:
                seen[case.label] = _status(case)
    return [f"- {label}: {_cell(text)}" for label, text in seen.items()]


def render_markdown(
    results: Sequence[SectionResult],
    targets: Sequence[TargetResult],
    info: RunInfo,
    charts: dict[str, str],
    assets: str = "benchmarks",
    *,
    counted_targets: Sequence[InstructionTargetResult] | None = None,
) -> str:
    """The whole page; ``charts`` maps a section key to its image path relative to the page,
    ``assets`` is the folder (relative to the page) holding the charts and results.json;
    ``counted_targets`` are the targets judged on instruction counts, when they were counted."""
    settings = info.settings
    typical, worst, worst_case = spread(results)
    counted = info.counted_calls > 0
    what = (
        "timings and instruction counts"
        if info.timed and counted
        else ("instruction counts only" if counted else "timings only")
    )
    counting_lines = [
        "",
        "## Targets judged on instruction counts",
        "",
        "Timings on this shared machine drift by tens of percent; instruction counts do not, so "
        "the issues' relative targets are judged on them. *Added* is a case's instructions per "
        "call minus its group's baseline's; *instructions per call* (total) is what the caller "
        "pays, the loop included, for comparing cases of different groups.",
        "",
        *instruction_targets_table(counted_targets or ()),
    ]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m benchmarks` (`nox -s bench`); the next run overwrites it -->",
        "",
        '!!! note "Generated from one run"',
        f"    Produced by `nox -s bench` on {info.started:%Y-%m-%d %H:%M} UTC in "
        f"{info.seconds / 60:.1f} minutes ({what}"
        + (f"; counting took {info.count_seconds / 60:.1f} of them" if counted else "")
        + "): every library in the same process and the same run. "
        "Ratios to a baseline measured in the same round are the result; absolute times are "
        "only this machine's.",
        *(counting_lines if counted else []),
        *(
            [
                "",
                "## Targets",
                "",
                "Each primitive's issue names the added cost per call it must stay within. *Met* "
                "means the median of the per-round differences to the baseline is at or under "
                "the limit.",
                "",
                *targets_table(targets, results),
            ]
            if info.timed
            else []
        ),
        "",
        "## How it is measured",
        "",
        "- **Baselines.** Every comparison has a baseline doing the same work without a library: "
        "a plain call, a plain `await`, a plain raise and catch, a raw Redis `GET` + "
        "`json.loads`, an engine without listeners. Every library wraps the *same* function, "
        "through its decorator, as its users write it.",
        "- **Verification first.** Before anything is timed, each case is called once and "
        "checked: a CLOSED breaker returns the function's result, an OPEN breaker raises its "
        "library's open error without running the function, a cache hit does not run the cached "
        "function, a successful retry made one attempt. The check is repeated after timing. A "
        "case that fails is reported and never timed, and the run exits non-zero.",
        f"- **Calibrated loops.** The number of calls per sample is chosen so one sample takes "
        f"about {settings.sample_seconds * 1e3:.0f} ms{_longer_samples(results, settings)}. "
        "Async cases time a loop of awaits inside one running event loop, the baseline the "
        "same way.",
        f"- **Interleaved rounds.** Each comparison runs {settings.rounds} rounds (fewer for the "
        "scaling sections); every round times each case once, in an order rotated by one each "
        "round, so drift and bursts of load hit all cases alike. For each round the harness "
        "takes the case's ratio to the baseline and the difference in ns per call; the tables "
        "give the medians and the interquartile range of the ratios.",
        "- **Logging and GC as in production.** The root logger has a `NullHandler`, so "
        "libraries that log (stamina and resilience_kit on retries) pay for building the record "
        "but nothing is printed; the garbage collector stays on.",
        *(
            [
                "- **Instruction counts** (`--instructions`). Each case also runs under "
                "`valgrind --tool=callgrind`, set up and verified the same way, in a process "
                "of its own with `PYTHONHASHSEED=0`. After the same warm-up, callgrind counts "
                "the instructions of a loop of N calls and of one of 2N calls (the same loop "
                "as the timings; counters zeroed at the start of each loop and written out at "
                "its end by callgrind client requests, which no library makes, so nothing in a "
                "case can move or split a count); the difference divided by N is "
                "one call, the loop's fixed costs cancelled. N is "
                f"{info.counted_calls:,} at most, fewer for a costly call (about "
                f"{_count.BUDGET / 1e6:.0f} million instructions per loop, at least "
                f"{_count.MIN_CALLS} calls; sized from the difference of a loop of "
                f"{_count.PROBE} call and one of {2 * _count.PROBE}), a whole number of the "
                "workers for threads and tasks. The collector stays on: a collection that the "
                "calls trigger is counted. Counts repeat to a fraction of a percent between runs "
                "(raising loops vary most). Groups of worker threads are timed, not counted: "
                "their GIL hand-offs follow the wall clock, not the calls. Counts include "
                "everything the process "
                "does per call but no time spent waiting (a Redis round trip counts only its "
                "client-side instructions).",
            ]
            if counted
            else []
        ),
        "",
        '!!! warning "Noise"',
        f"    This run shared a {info.machine.get('Cores', '?')}-core virtual machine with other "
        f"work: load average {info.load_before[0]:.2f} before, {info.load_after[0]:.2f} after. "
        "Absolute times move by tens of percent between runs here; per-round ratios move far "
        "less, but a difference of a few ns, or of a few percent in ratio, is not significant. "
        f"The rounds agreed this well: the interquartile range of a case's per-round ratios is "
        f"typically {typical:.1%} of its median ratio (the widest: {worst:.0%}, {worst_case}).",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {key} | {_cell(value)} |" for key, value in info.machine.items()),
        "",
        "## Versions",
        "",
        "| Library | Version |",
        "| --- | --- |",
        *(f"| {name} | {version} |" for name, version in info.versions.items()),
        "",
    ]
    for result in results:
        section = result.section
        lines += [f"## {section.title}", "", section.description, ""]
        if section.key in charts:
            lines += [f"![{section.title}]({charts[section.key]})", ""]
        if section.chart == "lines":
            series: dict[str, list[GroupResult]] = {}
            for group in result.groups:
                series.setdefault(group.group.series, []).append(group)
            for name, groups in series.items():
                if name:
                    lines += [f"### {name.capitalize()}", ""]
                lines += [*pivot_table(groups, section.x_label), ""]
                lines += _reasons(groups) + ([""] if _reasons(groups) else [])
        else:
            for group in result.groups:
                lines += [f"### {group.group.title}", "", f"*{group.group.kind.describe()}*", ""]
                lines += [*group_table(group), ""]
    lines += [
        "## Reproduce",
        "",
        "```bash",
        "nox -s bench                 # the full run (timings, then instruction counts);",
        "                             # rewrites this page and docs/benchmarks/",
        "nox -s bench -- --quick      # CI: every case runs and verifies, nothing is written",
        "nox -s bench -- --instructions --sections breaker   # instruction counts only",
        "nox -s bench -- --quick --instructions   # CI: every case counts (1 and 2 calls)",
        "python -m benchmarks --sections breaker,retry --rounds 15   # a part, in a bench venv",
        "```",
        "",
        "The peers are installed only in the bench session (`benchmarks/requirements.txt`), "
        "never as dependencies of resilience_kit. The raw figures of this run (every sample) "
        f"are in [results.json]({assets}/results.json).",
        "",
    ]
    return "\n".join(lines)


def to_json(
    results: Sequence[SectionResult],
    targets: Sequence[TargetResult],
    info: RunInfo,
    counted_targets: Sequence[InstructionTargetResult] | None = None,
) -> dict[str, Any]:
    """A machine-readable record of the run."""

    def case_json(group: GroupResult, case: CaseResult) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": case.label,
            "library": case.library,
            "baseline": case.baseline,
            "status": case.status,
        }
        if case.reason:
            out["reason"] = case.reason
        if case.timed:
            out.update(
                median_ns=round(case.median_ns, 2),
                added_ns=round(case.added, 2),
                ratio=round(case.ratio, 4),
                ratio_iqr=[round(v, 4) for v in case.ratio_iqr],
                calls_per_sample=case.calls_per_sample,
                per_call_ns=[round(v, 2) for v in case.per_call_ns],
            )
        if case.instructions is not None:
            added = group.added_instructions(case)
            ratio = group.instruction_ratio(case)
            out.update(
                instructions=round(case.instructions, 1),
                instructions_added=None if added is None else round(added, 1),
                instructions_ratio=None if ratio is None else round(ratio, 4),
                instruction_calls=case.instruction_calls,
            )
        if case.count_problem:
            out["count_problem"] = case.count_problem
        return out

    return {
        "started": info.started.isoformat(),
        "seconds": round(info.seconds, 1),
        "settings": {
            "rounds": info.settings.rounds,
            "sample_seconds": info.settings.sample_seconds,
            "quick": info.settings.quick,
            "timed": info.timed,
            "instruction_calls": info.counted_calls,
        },
        "load_average": {"before": info.load_before, "after": info.load_after},
        "machine": info.machine,
        "versions": info.versions,
        "targets": [
            {
                "title": t.target.title,
                "max_added_ns": t.target.max_added_ns,
                "added_ns": round(t.case.added, 2) if t.case is not None and t.case.timed else None,
                "met": t.met,
            }
            for t in targets
        ],
        "instruction_targets": [
            {
                "title": t.target.title,
                "measure": t.target.measure,
                "limit": t.target.describe(),
                "value": None if t.value is None else round(t.value, 1),
                "reference": None if t.reference is None else round(t.reference, 1),
                "ratio": None if t.ratio is None else round(t.ratio, 4),
                "met": t.met,
            }
            for t in counted_targets or ()
        ],
        "sections": [
            {
                "key": r.section.key,
                "title": r.section.title,
                "groups": [
                    {
                        "key": g.group.key,
                        "title": g.group.title,
                        "param": g.group.param,
                        "cases": [case_json(g, c) for c in g.cases],
                    }
                    for g in r.groups
                ],
            }
            for r in results
        ],
    }


def render_text(
    results: Sequence[SectionResult],
    targets: Sequence[TargetResult],
    counted_targets: Sequence[InstructionTargetResult] = (),
) -> str:
    """A terminal summary: every case and the targets."""
    out = []
    for result in results:
        out.append(f"\n== {result.section.title}")
        out.extend(f"  !! {error}" for error in result.errors)
        for group in result.groups:
            out.append(f"  -- {group.group.title}")
            for case in group.cases:
                line = f"    {case.label:<40}"
                if case.timed:
                    added = "" if case.baseline else f"  +{fmt_ns(case.added):>9} ns"
                    line += (
                        f" {fmt_ns(case.median_ns):>10} ns/call  {fmt_ratio(case.ratio):>8}{added}"
                    )
                if case.instructions is not None:
                    line += (
                        f" {fmt_count(case.instructions):>10} instr/call"
                        f"  {_count_ratio(group, case):>8}  {_added_count(group, case):>9}"
                    )
                if not case.timed and case.instructions is None:
                    line += f" {case.status}: {case.reason}"
                elif case.count_problem:
                    line += f"  (not counted: {case.count_problem})"
                out.append(line)
    if targets:
        out.append("\n== Targets")
        for target in targets:
            measured = (
                f"+{fmt_ns(target.case.added)} ns"
                if target.case is not None and target.case.timed
                else "-"
            )
            out.append(
                f"  {target.target.title:<40} <= {fmt_ns(target.target.max_added_ns):>5} ns  "
                f"{measured:>12}  {_verdict(target)}"
            )
    if counted_targets:
        out.append("\n== Targets judged on instruction counts")
        for counted in counted_targets:
            ratio = "-" if counted.ratio is None else f"{counted.ratio:.2f}x"
            out.append(
                f"  {counted.target.title}: {ratio} ({counted.target.describe()})  "
                f"{_counted_verdict(counted)}"
            )
    return "\n".join(out)
