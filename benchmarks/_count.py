"""The counting child: ``python -m benchmarks._count``, run by ``--instructions`` under callgrind.

It sets up and verifies every case exactly as a timed run does (the same setups, the same
checks, before and after), makes the same warm-up, then has callgrind count a loop of N calls and
one of 2N (see ``_callgrind.py``). It writes a JSON record of every case's status and
instructions per call for the parent, which never runs under valgrind.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._callgrind import Dumps, case_record, per_call
from benchmarks._harness import (
    Context,
    Group,
    GroupResult,
    RunSettings,
    VerificationError,
    close_group,
    countable,
    prepare_group,
    round_up,
    run_section,
    verify,
)
from benchmarks.sections import load_sections

PROBE = 1
"""Calls of the smaller sizing loop; the other makes twice as many, and their difference (the
same arithmetic as the count itself) sizes N. One loop alone would charge the loop's constant to
the call: an async loop's (tens of thousands of instructions) made a cheap call look costly and
cut its N to a few hundred, where one garbage collection more in one of the two counted loops
turned a dict lookup's count negative."""
BUDGET = 20_000_000
"""Instructions one loop of N calls should about take: N shrinks for a costly call."""
MIN_CALLS = 2
"""The fewest calls of N for a costly call. ``BUDGET`` alone gives a call of up to 400,000
instructions 50 calls or more; a call of hundreds of millions (a scrape of 1,000 breakers) is
counted to the instruction in two, and each takes seconds under callgrind (with 10 probe calls and
N of at least 50, the scrapes alone took 25 minutes of the full count)."""


def calls_for(probe: int, probe_calls: int, most: int, workers: int) -> int:
    """N for a case whose ``probe_calls`` calls took ``probe`` instructions: about
    ``BUDGET`` worth of calls, between ``MIN_CALLS`` and ``most``, a whole number of
    ``workers``."""
    per_call = max(1.0, probe / probe_calls)
    wanted = max(min(MIN_CALLS, most), min(most, int(BUDGET / per_call)))
    return round_up(wanted, workers)


def count_group(
    group: Group, ctx: Context, dumps: Dumps, calls: int, log: Callable[[str], None]
) -> GroupResult:
    """Set up and verify every case of ``group``, then count N and 2N calls of each."""
    started = time.perf_counter()
    if not countable(group.kind):
        log(f"  {group.title}: not counted ({group.kind.describe()}: see countable())")
        return GroupResult(group, [])
    if ctx.quick and not group.quick_count:
        log(f"  {group.title}: not counted in quick mode (see Group.quick_count)")
        return GroupResult(group, [])
    results, active = prepare_group(group, ctx)
    try:
        base = next((entry for entry in active if entry.case.baseline), None)
        if base is not None and base.result.status == "ok":
            for entry in active:
                result = entry.result
                if result.status != "ok":
                    continue
                try:
                    workers = group.kind.workers
                    if ctx.quick:  # a smoke check: no sizing loop
                        n = round_up(calls, workers)
                    else:
                        probe_calls = round_up(PROBE, workers)
                        small = dumps.measure(entry.timer, probe_calls)
                        large = dumps.measure(entry.timer, 2 * probe_calls)
                        n = calls_for(large - small, probe_calls, calls, workers)
                    entry.timer(n)  # warm-up, as a timed run makes
                    first = dumps.measure(entry.timer, n)
                    second = dumps.measure(entry.timer, 2 * n)
                    verify(group.kind, entry.prepared, ctx)  # still does what it claims
                except VerificationError as exc:
                    result.status, result.reason = "failed", f"verification after counting: {exc}"
                except Exception as exc:
                    result.status, result.reason = "failed", f"raised while counted: {exc!r}"
                else:
                    result.instructions = per_call(first, second, n)
                    result.instruction_calls = n
            if base.result.status != "ok":
                for entry in active:
                    if entry.result.status == "ok" and entry is not base:
                        entry.result.status = "failed"
                        entry.result.reason = "the baseline failed while counted"
                        entry.result.instructions = None
    finally:
        close_group(group, active, ctx, log)
    counted = ", ".join(
        f"{r.label} {r.instructions:,.0f}" for r in results if r.instructions is not None
    )
    # The wall time under callgrind (setups included): what keeps CI's quick count short.
    log(f"  {group.title}: {counted or 'nothing counted'} ({time.perf_counter() - started:.0f} s)")
    return GroupResult(group, results)


def main(argv: list[str]) -> int:
    """Count the sections named and write the record; 0 unless the arguments are bad."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks._count")
    parser.add_argument("--sections", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--out-file", type=Path, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    sections = load_sections(set(args.sections.split(",")))
    ctx = Context(RunSettings(rounds=1, quick=args.quick, quick_calls=args.calls))
    dumps = Dumps(args.out_file)

    def log(text: str) -> None:
        print(text, flush=True)

    def runner(group: Group, ctx: Context, _rounds: int, log: Callable[[str], None]) -> GroupResult:
        return count_group(group, ctx, dumps, args.calls, log)

    records = []
    try:
        for section in sections:
            result = run_section(section, ctx, log, runner)
            records.append(
                {
                    "key": section.key,
                    "errors": result.errors,
                    "groups": [
                        {"key": g.group.key, "cases": [case_record(c) for c in g.cases]}
                        for g in result.groups
                    ],
                }
            )
    finally:
        ctx.close()
    args.record.write_text(json.dumps({"sections": records}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
