"""``python -m benchmarks``: run the sections, print a summary, write the page.

    python -m benchmarks                       # full run: timings and instruction counts,
                                               # writes docs/benchmarks.md + charts
    python -m benchmarks --quick               # every case runs and verifies; writes nothing (CI)
    python -m benchmarks --instructions        # instruction counts only (callgrind)
    python -m benchmarks --quick --instructions   # every case counts under callgrind (CI)
    python -m benchmarks --sections breaker,retry --rounds 15 --output /tmp/bench.md

Exit status: 0 when every case that could run did what it claims; 1 when any case failed
(verification, an error while set up, timed or counted), when a resilience_kit case did not run
(only a module its section declares future and that does not exist yet may be missing), when a
target was not measured, or when instructions are to be counted and valgrind is missing; 2 for
bad arguments.
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

from benchmarks import _callgrind, _report, _svg
from benchmarks._harness import (
    Context,
    InstructionTargetResult,
    RunSettings,
    Section,
    SectionResult,
    TargetResult,
    Unavailable,
    evaluate_instruction_targets,
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
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per call under valgrind's callgrind instead of timing "
        "(a full run does both)",
    )
    parser.add_argument(
        "--no-instructions", action="store_true", help="a full run without instruction counts"
    )
    parser.add_argument(
        "--calls",
        type=_at_least_one,
        help=f"N, the most calls counted per case, over N and 2N (default "
        f"{_callgrind.DEFAULT_CALLS}; quick {_callgrind.QUICK_CALLS})",
    )
    parser.add_argument(
        "--jobs", type=_at_least_one, default=2, help="callgrind processes at once (default 2)"
    )
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    if args.instructions and args.no_instructions:
        parser.error("--instructions and --no-instructions exclude each other")
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
    timing = not args.instructions
    counting = args.instructions or not (args.quick or args.no_instructions)
    valgrind = ""
    if counting:
        try:
            valgrind = _callgrind.find_valgrind()
        except _callgrind.ValgrindMissing as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    calls = args.calls or (_callgrind.QUICK_CALLS if args.quick else _callgrind.DEFAULT_CALLS)
    output = args.output or (None if args.quick or args.instructions else DEFAULT_OUTPUT)
    # Libraries log on retries; a handler on the root logger keeps that cost in the figures
    # without printing thousands of lines (no handler would send WARNINGs to stderr).
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)

    info = _report.RunInfo(
        settings, datetime.datetime.now(datetime.timezone.utc), load_before=_report.load_average()
    )
    info.timed, info.counted_calls = timing, calls if counting else 0
    ctx = Context(settings)
    started = time.perf_counter()
    results: list[SectionResult] = []
    try:
        info.machine = _report.machine(redis_version(ctx))
        info.versions = _report.versions()
        if timing:
            results = [
                run_section(section, ctx, lambda text: print(text, flush=True))
                for section in sections
            ]
    finally:
        ctx.close()
    if counting:
        results = count_instructions(sections, results, info, args, valgrind)
    info.seconds = time.perf_counter() - started
    info.load_after = _report.load_average()
    targets = evaluate_targets(results) if timing else []
    counted_targets = evaluate_instruction_targets(results) if counting else []
    print(_report.render_text(results, targets, counted_targets))

    if output is not None:
        write_page(output, results, targets, info, counted_targets)
    failed = problems(results, targets, counted_targets)
    if failed:
        print(f"\nthe run FAILED ({len(failed)} problem(s)):", file=sys.stderr)
        for problem in failed:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"\nall cases verified, every target measured ({info.seconds:.0f} s)")
    return 0


def count_instructions(
    sections: list[Section],
    timed: list[SectionResult],
    info: _report.RunInfo,
    args: argparse.Namespace,
    valgrind: str,
) -> list[SectionResult]:
    """Count every case under callgrind: the timed results with their counts beside, or (no
    timing) the counted results alone."""
    started = time.perf_counter()
    records = _callgrind.count(
        sections, calls=info.counted_calls, quick=args.quick, jobs=args.jobs, valgrind=valgrind
    )
    info.count_seconds = time.perf_counter() - started
    info.machine["valgrind"] = _callgrind.valgrind_version(valgrind)
    if info.timed:
        _callgrind.merge(timed, records)
        return timed
    return _callgrind.as_results(sections, records)


def write_page(
    output: Path,
    results: list[SectionResult],
    targets: list[TargetResult],
    info: _report.RunInfo,
    counted_targets: list[InstructionTargetResult] | None = None,
) -> None:
    """The page, one SVG per section and results.json in ``<page stem>/`` beside the page."""
    assets = output.parent / output.stem
    assets.mkdir(parents=True, exist_ok=True)
    charts = {}
    for result in results:
        path = assets / f"{result.section.key}.svg"
        path.write_text(_svg.chart(result), encoding="utf-8")
        charts[result.section.key] = f"{assets.name}/{path.name}"
    (assets / "results.json").write_text(
        json.dumps(_report.to_json(results, targets, info, counted_targets), indent=1) + "\n",
        encoding="utf-8",
    )
    output.write_text(
        _report.render_markdown(
            results, targets, info, charts, assets.name, counted_targets=counted_targets
        ),
        encoding="utf-8",
    )
    print(f"wrote {output} and {assets}/")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
