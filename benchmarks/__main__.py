"""``python -m benchmarks``: run the sections, print a summary, write the page.

    python -m benchmarks                       # full run, writes docs/benchmarks.md + charts
    python -m benchmarks --quick               # every case runs and verifies; writes nothing
    python -m benchmarks --sections breaker,retry --rounds 15 --output /tmp/bench.md

Exit status: 0 when every case that could run did what it claims; 1 when any case failed
(verification, an error while set up or timed); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
import time
from pathlib import Path

from benchmarks import _report, _svg
from benchmarks._harness import Context, RunSettings, Unavailable, evaluate_targets, run_section
from benchmarks.sections import load_sections
from benchmarks.sections._common import redis_sync

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="run each case a few times only")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"the page to write (default for a full run: {DEFAULT_OUTPUT.relative_to(ROOT)}; "
        "a quick run writes nothing unless given); charts go to a folder named after it",
    )
    parser.add_argument("--sections", help="comma-separated section keys (default: all)")
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 40; quick 2)")
    parser.add_argument("--sample-ms", type=float, help="target length of one sample (default 20)")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    return parser.parse_args(argv)


def redis_version(ctx: Context) -> str | None:
    try:
        return str(redis_sync(ctx).info("server")["redis_version"])
    except (Unavailable, Exception):
        return None


def main(argv: list[str]) -> int:
    args = parse(argv)
    only = set(args.sections.split(",")) if args.sections else None
    sections = load_sections(only)
    if args.list or (only and not sections):
        for section in load_sections():
            print(f"{section.key:<16} {section.title} ({len(section.groups)} groups)")
        return 0 if args.list else 2
    settings = RunSettings(
        rounds=args.rounds or (2 if args.quick else 40),
        sample_seconds=(args.sample_ms or 20.0) / 1e3,
        quick=args.quick,
    )
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    # Libraries log on retries; a handler on the root logger keeps that cost in the figures
    # without printing thousands of lines (no handler would send WARNINGs to stderr).
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)

    info = _report.RunInfo(
        settings, datetime.datetime.now(datetime.timezone.utc), load_before=_report.load_average()
    )
    ctx = Context(settings)
    started = time.perf_counter()
    try:
        info.machine = _report.machine(redis_version(ctx))
        info.versions = _report.versions()
        results = [
            run_section(section, ctx, lambda text: print(text, flush=True)) for section in sections
        ]
    finally:
        ctx.close()
    info.seconds = time.perf_counter() - started
    info.load_after = _report.load_average()
    targets = evaluate_targets(results)
    print(_report.render_text(results, targets))

    if output is not None:
        write_page(output, results, targets, info)
    failures = [(s, g, c) for s in results for g, c in s.failures]
    if failures:
        print(f"\n{len(failures)} case(s) FAILED:", file=sys.stderr)
        for section, group, case in failures:
            print(
                f"  {section.section.key}/{group.group.key}/{case.label}: {case.reason}",
                file=sys.stderr,
            )
        return 1
    print(f"\nall cases verified ({info.seconds:.0f} s)")
    return 0


def write_page(output: Path, results: list, targets: list, info: _report.RunInfo) -> None:
    """The page, one SVG per section and results.json in ``<page stem>/`` beside the page."""
    assets = output.parent / output.stem
    assets.mkdir(parents=True, exist_ok=True)
    charts = {}
    for result in results:
        path = assets / f"{result.section.key}.svg"
        path.write_text(_svg.chart(result), encoding="utf-8")
        charts[result.section.key] = f"{assets.name}/{path.name}"
    (assets / "results.json").write_text(
        json.dumps(_report.to_json(results, targets, info), indent=1) + "\n", encoding="utf-8"
    )
    output.write_text(
        _report.render_markdown(results, targets, info, charts, assets.name), encoding="utf-8"
    )
    print(f"wrote {output} and {assets}/")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
