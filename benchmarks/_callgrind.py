"""Instruction counts from valgrind's callgrind: exact, repeatable figures on a noisy machine.

Each group of sections runs in a child process (``python -m benchmarks._count``) under
``valgrind --tool=callgrind``. The child marks where a counted loop starts and ends with callgrind
client requests (``_markers.py``): one zeroes the counters, the other writes them out (a *dump*)
under a label of ours. Only code that asks for them makes those requests, so no library or case
can move or split a count (marking with a libc function, ``--dump-before=getppid``, was split by
the Prometheus scrape, which calls ``getppid()`` itself). For each case the child makes the same
warm-up as a timed run, then measures two loops of the same kind the timings use, one of ``N``
calls and one of ``2N``::

    gc.collect(); zero(); loop(N);  dump("... 1")     # dump 1: I(N)
    gc.collect(); zero(); loop(2N); dump("... 2")     # dump 2: I(2N)

Each dump holds one loop plus a constant (starting the loop, the markers' own calls), so
``(I(2N) - I(N)) / N`` is the cost of one call with that constant cancelled, to the instruction.
This module is the parent's side (finding valgrind, starting the children, reading their
records) and the arithmetic; ``_count.py`` is the child's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _markers
from benchmarks._harness import (
    OURS,
    CaseResult,
    GroupResult,
    Section,
    SectionResult,
    countable,
)

DUMP_LABEL = "resilience_kit benchmarks: loop"
"""The label of our dumps; dump ``k`` of a child is ``Client Request: {DUMP_LABEL} k``."""

DEFAULT_CALLS = 1000
"""N: each case is counted over N and 2N calls."""
QUICK_CALLS = 1
"""N of ``--quick --instructions``, CI's smoke check that every case counts: a call and two.
Its figures are not for reading (a loop's fixed costs do not cancel out of so few calls); a
scrape of 1,000 breakers is 150 to 850 million instructions: with N = 10 the run had not ended
after 28 minutes."""

ROOT = Path(__file__).resolve().parent.parent


class ValgrindMissing(RuntimeError):
    """``--instructions`` was asked for and valgrind cannot be run."""


class CallgrindError(RuntimeError):
    """A dump is missing, is not callgrind's, or was not written by our marker."""


def find_valgrind(path: str | None = None) -> str:
    """The valgrind executable: ``path``, else ``$VALGRIND``, else the one on ``PATH``.

    Raises [ValgrindMissing][] with what to do when there is none.
    """
    candidate = path or os.environ.get("VALGRIND") or shutil.which("valgrind")
    if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    where = f"{candidate!r} is not an executable file" if candidate else "not found on PATH"
    raise ValgrindMissing(
        f"--instructions counts instructions with valgrind (callgrind), and valgrind is {where}. "
        "Install it (Debian/Ubuntu: apt-get install valgrind), point $VALGRIND at it, or run "
        "without --instructions (timings only: --no-instructions for a full run)."
    )


def valgrind_version(valgrind: str) -> str:
    """``valgrind --version``'s answer (``valgrind-3.19.0``), or ``"unknown"``."""
    try:
        done = subprocess.run(
            [valgrind, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def parse_dump(text: str) -> int:
    """The instructions executed (``Ir``) in one callgrind dump.

    The format names its event columns on an ``events:`` line and gives the dump's totals on a
    ``summary:`` line (``totals:`` in some versions); trailing zero columns may be left out.
    """
    events: list[str] | None = None
    summary: list[str] | None = None
    totals: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            summary = line.split()[1:]
        elif line.startswith("totals:"):
            totals = line.split()[1:]
    values = summary if summary is not None else totals
    if events is None or values is None:
        raise CallgrindError("not a callgrind dump: no 'events:' and 'summary:' lines")
    if "Ir" not in events:
        raise CallgrindError(f"the dump does not count instructions (events: {' '.join(events)})")
    index = events.index("Ir")
    try:
        return int(values[index]) if index < len(values) else 0
    except ValueError:
        raise CallgrindError(f"the dump's total is not a number: {values[index]!r}") from None


def dump_trigger(text: str) -> str:
    """What made callgrind write this dump (its ``desc: Trigger:`` line), or ``""``."""
    for line in text.splitlines():
        if line.startswith("desc: Trigger:"):
            return line.split(":", 2)[2].strip()
    return ""


def per_call(first: int, second: int, calls: int) -> float:
    """Instructions of one call from a loop of ``calls`` (``first``) and one of twice as many
    (``second``): their difference cancels what both loops pay once."""
    if calls < 1:
        raise ValueError(f"calls must be at least 1, got {calls}")
    return (second - first) / calls


@dataclass
class Dumps:
    """The child's side of the markers: measure a loop, read the dump it produced."""

    out_file: Path
    count: int = 0

    def measure(self, loop: Callable[[int], object], calls: int) -> int:
        """Instructions of ``loop(calls)``, the markers' constant included."""
        import gc

        self.count += 1
        label = f"{DUMP_LABEL} {self.count}"
        zero, dump = _markers.zero(), _markers.dump(label)  # built before the count starts
        # The same start for both loops; the collections the calls trigger are counted, as a
        # production process pays them.
        gc.collect()
        zero()
        loop(calls)
        dump()
        path = Path(f"{self.out_file}.{self.count}")
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise CallgrindError(
                f"callgrind wrote no dump {path.name}: this process does not run under "
                "valgrind --tool=callgrind"
            ) from None
        if Path(f"{self.out_file}.{self.count + 1}").exists():
            raise CallgrindError(
                "another dump was written during the loop (a callgrind client request from "
                "elsewhere, or callgrind_control): the count is split"
            )
        trigger = dump_trigger(text)
        if trigger != f"Client Request: {label}":
            raise CallgrindError(f"dump {path.name} was not made by the marker: {trigger!r}")
        path.unlink()
        return parse_dump(text)


def command(
    valgrind: str,
    *,
    out_file: Path,
    record: Path,
    sections: Sequence[str],
    calls: int,
    quick: bool,
) -> list[str]:
    """The child's command line: the counting child under callgrind (it dumps by itself)."""
    return [
        valgrind,
        "--tool=callgrind",
        "--quiet",
        f"--callgrind-out-file={out_file}",
        "--dump-instr=no",
        "--dump-line=no",
        sys.executable,
        "-m",
        "benchmarks._count",
        "--sections",
        ",".join(sections),
        "--calls",
        str(calls),
        "--out-file",
        str(out_file),
        "--record",
        str(record),
        *(["--quick"] if quick else []),
    ]


def split(sections: Sequence[Section], jobs: int) -> list[list[Section]]:
    """``sections`` dealt into at most ``jobs`` children, in page order, none empty."""
    buckets: list[list[Section]] = [[] for _ in range(max(1, min(jobs, len(sections))))]
    for index, section in enumerate(sections):
        buckets[index % len(buckets)].append(section)
    return [bucket for bucket in buckets if bucket]


def count(
    sections: Sequence[Section],
    *,
    calls: int,
    quick: bool,
    jobs: int,
    valgrind: str,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Count every case of ``sections`` under callgrind; the children's records by section key.

    A child that fails leaves a record with only ``errors`` for each of its sections.
    """
    records: dict[str, dict[str, Any]] = {}
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same hashes, so the same dict probing
    with tempfile.TemporaryDirectory(prefix="rk-callgrind-") as tmp:
        children = []
        for index, bucket in enumerate(split(sections, jobs)):
            keys = [section.key for section in bucket]
            out_file = Path(tmp) / f"callgrind.{index}.out"
            record = Path(tmp) / f"record.{index}.json"
            errors = Path(tmp) / f"stderr.{index}.txt"
            argv = command(
                valgrind, out_file=out_file, record=record, sections=keys, calls=calls, quick=quick
            )
            log(f"counting instructions under callgrind: {', '.join(keys)}")
            with errors.open("w", encoding="utf-8") as stderr:
                # The children print their progress straight to our stdout, a line at a time.
                process = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=stderr)
            children.append((keys, record, errors, process))
        for keys, record, errors, process in children:
            process.wait()
            try:
                data = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                lines = errors.read_text(encoding="utf-8", errors="replace").strip().splitlines()
                tail = " | ".join(lines[-5:])
                error = (
                    f"the callgrind run exited with status {process.returncode} and no record "
                    f"({exc.__class__.__name__}): {tail or 'no output'}"
                )
                data = {"sections": [{"key": key, "errors": [error], "groups": []} for key in keys]}
            records.update({section["key"]: section for section in data["sections"]})
    return records


def _case_from(record: dict[str, Any]) -> CaseResult:
    case = CaseResult(record["label"], record["library"], record["baseline"])
    case.status = record["status"]
    case.reason = record.get("reason", "")
    case.not_built = record.get("not_built", "")
    case.note = record.get("note", "")
    case.instructions = record.get("instructions")
    case.instruction_calls = record.get("calls", 0)
    return case


def case_record(case: CaseResult) -> dict[str, Any]:
    """What a child reports about one counted case."""
    out: dict[str, Any] = {
        "label": case.label,
        "library": case.library,
        "baseline": case.baseline,
        "status": case.status,
    }
    texts = {"reason": case.reason, "not_built": case.not_built, "note": case.note}
    out.update({key: value for key, value in texts.items() if value})
    if case.instructions is not None:
        out.update(instructions=case.instructions, calls=case.instruction_calls)
    return out


def as_results(
    sections: Sequence[Section], records: dict[str, dict[str, Any]]
) -> list[SectionResult]:
    """The results of a counting-only run, from the children's records."""
    results = []
    for section in sections:
        record = records.get(section.key, {"errors": ["no record"], "groups": []})
        by_key = {group["key"]: group for group in record["groups"]}
        groups = []
        for group in section.groups:
            cases = [_case_from(case) for case in by_key.get(group.key, {}).get("cases", [])]
            groups.append(GroupResult(group, cases))
        results.append(SectionResult(section, groups, list(record["errors"])))
    return results


def merge(results: Sequence[SectionResult], records: dict[str, dict[str, Any]]) -> None:
    """Put the counts of a counting run beside the timings of the same cases.

    A case timed but not counted gets a ``count_problem`` when counting failed it, or when it is
    resilience_kit's (which must be measured); an unavailable peer is only left without counts.
    """
    for result in results:
        record = records.get(result.section.key, {"errors": ["no record"], "groups": []})
        result.errors += [f"instructions: {error}" for error in record["errors"]]
        by_key = {group["key"]: group for group in record["groups"]}
        for group in result.groups:
            if not countable(group.group.kind):
                continue
            counted = {c["label"]: c for c in by_key.get(group.group.key, {}).get("cases", [])}
            for case in group.cases:
                found = counted.get(case.label)
                if found is not None and found.get("instructions") is not None:
                    case.instructions = found["instructions"]
                    case.instruction_calls = found.get("calls", 0)
                elif case.status == "ok" and (
                    found is None or found["status"] == "failed" or case.library == OURS
                ):
                    case.count_problem = (
                        found.get("reason", "not counted") if found else "not counted"
                    )
