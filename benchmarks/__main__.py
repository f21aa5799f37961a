"""``python -m benchmarks``: run the sections, print a summary, write the page.

    python -m benchmarks                       # full run, writes docs/benchmarks.md + charts
    python -m benchmarks --quick               # every case runs and verifies; writes nothing
    python -m benchmarks --sections breaker,retry --rounds 15 --output /tmp/bench.md

Exit status: 0 when every case that could run did what it claims; 1 when any case failed
(verification, an error while set up or timed), when a resilience_kit case did not run (only a
module its section declares future and that does not exist yet may be missing), or when a
target was not measured; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import sys
import time
from pathlib import Path

from benchmarks import _report, _svg
from benchmarks._harness import (
    Context,
    RunSettings,
    Unavailable,
    evaluate_targets,
    problems,
    run_section,
)
from benchmarks.sections import load_sections
from benchmarks.sections._common import redis_sync

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments; exits with status 2 (argparse's) when they are bad."""
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
    parser.add_argument(
        "--rounds", type=_at_least_one, help="rounds per comparison (default 40; quick 2)"
    )
    parser.add_argument(
        "--sample-ms", type=_positive, help="target length of one sample (default 20)"
    )
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    args.only = None
    if args.sections is not None:
        known = [section.key for section in load_sections()]
        args.only = {key.strip() for key in args.sections.split(",") if key.strip()}
        unknown = sorted(args.only - set(known))
        if unknown or not args.only:
            problem = f"unknown section(s) {', '.join(unknown)}" if unknown else "no section given"
            parser.error(f"--sections: {problem}; valid: {', '.join(known)}")
    return args


def redis_version(ctx: Context) -> str | None:
    try:
        return str(redis_sync(ctx).info("server")["redis_version"])
    except (Unavailable, Exception):
        return None


def main(argv: list[str]) -> int:
    """Run, report, write the page; the exit status (see the module's docstring)."""
    try:
        args = parse(argv)
    except SystemExit as exc:  # bad arguments (2) or --help (0): a status, like every outcome
        return exc.code if isinstance(exc.code, int) else 2
    if args.list:
        for section in load_sections():
            print(f"{section.key:<16} {section.title} ({len(section.groups)} groups)")
        return 0
    sections = load_sections(args.only)
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
    failed = problems(results, targets)
    if failed:
        print(f"\nthe run FAILED ({len(failed)} problem(s)):", file=sys.stderr)
        for problem in failed:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"\nall cases verified, every target measured ({info.seconds:.0f} s)")
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
