"""Figures of several worker processes behind one scrape (gunicorn, uvicorn ``--workers``).

prometheus-client's multiprocess mode keeps counters in shared files but never runs custom
collectors, and ours reads live objects that exist in each worker separately. So each worker
writes a snapshot of its families to ``<directory>/resilience_kit_<pid>.json`` every few
seconds (from a daemon thread, and once more at exit), and the worker that answers a scrape
merges its own live families with the other workers' snapshots, each family as its ``merge``
says. Files are written atomically (a temporary file, then a rename), so a reader never sees
half a snapshot.

A worker that has exited leaves its file: its counters still count (a sum must never go down
when a worker is recycled), its gauges no longer do. Empty the directory when the server
starts, as prometheus-client requires for its own files.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from resilience_kit._metrics import Histogram, MetricFamily

__all__ = ["SnapshotWriter", "merge_families", "read_snapshots"]

_logger = logging.getLogger("resilience_kit.metrics")
_PREFIX = "resilience_kit_"
_SUFFIX = ".json"


def _encode(family: MetricFamily) -> dict[str, Any]:
    samples = [
        [list(labels), {"b": value.buckets, "s": value.sum, "c": value.count}]
        if isinstance(value, Histogram)
        else [list(labels), value]
        for labels, value in family.samples
    ]
    return {
        "name": family.name,
        "kind": family.kind,
        "help": family.help,
        "labels": list(family.labels),
        "merge": family.merge,
        "samples": samples,
    }


def _decode(data: dict[str, Any]) -> MetricFamily:
    samples = [
        (
            tuple(labels),
            Histogram(tuple((float(b), float(c)) for b, c in value["b"]), value["s"], value["c"])
            if isinstance(value, dict)
            else float(value),
        )
        for labels, value in data["samples"]
    ]
    return MetricFamily(
        data["name"], data["kind"], data["help"], tuple(data["labels"]), samples, data["merge"]
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Snapshot:
    """One worker's snapshot as read from disk."""

    __slots__ = ("alive", "families", "pid", "written")

    def __init__(self, pid: int, written: float, alive: bool, families: list[MetricFamily]):
        self.pid = pid
        self.written = written
        self.alive = alive
        self.families = families


def read_snapshots(directory: Path, *, exclude_pid: int | None = None) -> list[Snapshot]:
    """Every readable snapshot in ``directory`` except ``exclude_pid``'s."""
    found = []
    for path in directory.glob(f"{_PREFIX}*{_SUFFIX}"):
        try:
            data = json.loads(path.read_text())
            pid = int(data["pid"])
            if pid == exclude_pid and data.get("live", True):
                continue
            families = [_decode(each) for each in data["families"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            _logger.warning("skipping unreadable metrics snapshot %s: %s", path, error)
            continue
        alive = bool(data.get("live", True)) and _alive(pid)
        found.append(Snapshot(pid, float(data["written"]), alive, families))
    return found


def _add_histograms(a: Histogram, b: Histogram) -> Histogram:
    if [bound for bound, _ in a.buckets] != [bound for bound, _ in b.buckets]:
        return a  # different bucket layouts cannot be added; keep the scraping worker's
    buckets = tuple((bound, x + y) for (bound, x), (_, y) in zip(a.buckets, b.buckets, strict=True))
    return Histogram(buckets, a.sum + b.sum, a.count + b.count)


def merge_families(own: list[MetricFamily], others: Iterable[Snapshot]) -> list[MetricFamily]:
    """``own`` (the scraping worker's live families) merged with the other workers' snapshots."""
    order: list[str] = []
    merged: dict[str, MetricFamily] = {}
    values: dict[str, dict[tuple[str, ...], Any]] = {}
    newest: dict[tuple[str, tuple[str, ...]], float] = {}
    now = time.time()

    def take(family: MetricFamily, written: float, alive: bool) -> None:
        if family.name not in merged:
            order.append(family.name)
            merged[family.name] = MetricFamily(
                family.name, family.kind, family.help, family.labels, [], family.merge
            )
            values[family.name] = {}
        table = values[family.name]
        policy = merged[family.name].merge
        if policy != "sum" and not alive:
            return
        for labels, value in family.samples:
            if labels not in table:
                table[labels] = value
                newest[family.name, labels] = written
            elif policy == "sum":
                current = table[labels]
                table[labels] = (
                    _add_histograms(current, value)
                    if isinstance(current, Histogram) and isinstance(value, Histogram)
                    else current + value
                )
            elif policy == "max":
                table[labels] = max(table[labels], value)
            elif written > newest[family.name, labels]:
                table[labels] = value
                newest[family.name, labels] = written

    for family in own:
        take(family, now, True)
    for snapshot in others:
        for family in snapshot.families:
            take(family, snapshot.written, snapshot.alive)
    result = []
    for name in order:
        family = merged[name]
        family.samples = sorted(values[name].items())
        result.append(family)
    return result


class SnapshotWriter:
    """Writes this process's families to the directory every ``interval`` seconds.

    The thread is a daemon; at exit one last snapshot is written, marked as final, so a worker
    recycled by its server keeps its counters in the sum. After a fork the child starts a writer
    of its own (a server that imports the app before forking its workers).
    """

    def __init__(
        self, directory: Path, interval: float, collect: Callable[[], list[MetricFamily]]
    ) -> None:
        self.directory = directory
        self.interval = interval
        self.collect = collect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        _writers.add(self)

    @property
    def path(self) -> Path:
        return self.directory / f"{_PREFIX}{os.getpid()}{_SUFFIX}"

    def start(self) -> None:
        with self._lock:
            pid = os.getpid()
            if self._pid == pid and self._thread is not None and self._thread.is_alive():
                return
            self._pid = pid
            self._retire_previous_owner()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, name="resilience_kit-metrics-snapshot", daemon=True
            )
            self._thread.start()

    def _retire_previous_owner(self) -> None:
        # A file with our pid left by an earlier process (pids are reused): keep its counters
        # under another name, as the snapshot of an exited worker.
        path = self.path
        if path.exists():
            retired = self.directory / f"{_PREFIX}{os.getpid()}-{time.time_ns()}{_SUFFIX}"
            with contextlib.suppress(OSError):
                data = json.loads(path.read_text())
                data["live"] = False
                retired.write_text(json.dumps(data))
                path.unlink()

    def _run(self) -> None:
        while True:
            self.write()
            if self._stop.wait(self.interval):
                return

    def write(self, *, final: bool = False) -> None:
        """Write one snapshot now (``final``: the process is exiting)."""
        try:
            data = {
                "pid": os.getpid(),
                "written": time.time(),
                "live": not final,
                "families": [_encode(family) for family in self.collect()],
            }
            handle, temporary = tempfile.mkstemp(
                dir=self.directory, prefix=".resilience_kit-", suffix=".tmp"
            )
            with os.fdopen(handle, "w") as stream:
                json.dump(data, stream, separators=(",", ":"))
            os.replace(temporary, self.path)
        except Exception:
            _logger.exception("could not write the metrics snapshot to %s", self.directory)

    def stop(self, *, final: bool = True) -> None:
        """Stop the thread; with ``final``, write a last snapshot marked as final."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if final and self._pid == os.getpid():
            self.write(final=True)
        _writers.discard(self)


_writers: weakref.WeakSet[SnapshotWriter] = weakref.WeakSet()


def _after_fork() -> None:
    for writer in list(_writers):
        if not writer._stop.is_set():
            writer._thread = None
            writer._lock = threading.Lock()  # the parent's may have been held at the fork
            writer.start()


def _at_exit() -> None:
    for writer in list(_writers):
        if writer._pid == os.getpid() and not writer._stop.is_set():
            writer.stop(final=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
atexit.register(_at_exit)
