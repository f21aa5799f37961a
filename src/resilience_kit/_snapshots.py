"""Figures of several worker processes behind one scrape (gunicorn, uvicorn ``--workers``).

prometheus-client's multiprocess mode keeps counters in shared files but never runs custom
collectors, and ours reads live objects that exist in each worker separately. So each worker
writes a snapshot of its families to ``<directory>/resilience_kit_<pid>.json`` every few
seconds (from a daemon thread, and once more at exit), and the worker that answers a scrape
merges its own live families with the other workers' snapshots, each family as its ``merge``
says. Files are written atomically (a temporary file, then a rename), so a reader never sees
half a snapshot.

A worker that has exited leaves its file: its counters still count (a sum must never go down
when a worker is recycled), its gauges no longer do; the workers fold such files into one
archive (see [compact][resilience_kit._snapshots.compact]). Empty the directory when the server
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

__all__ = ["ARCHIVE", "SnapshotWriter", "compact", "merge_families", "read_snapshots"]

_logger = logging.getLogger("resilience_kit.metrics")
_PREFIX = "resilience_kit_"
_SUFFIX = ".json"
ARCHIVE = f"{_PREFIX}archive{_SUFFIX}"


class _Strings(dict[str, int]):
    """Label value -> its index in the snapshot's table of strings (each written once)."""

    def __missing__(self, value: str) -> int:
        index = self[value] = len(self)
        return index


def _encode(families: list[MetricFamily]) -> tuple[list[str], list[dict[str, Any]]]:
    # Label values are written once, in a table, and samples refer to them by index: a
    # thousand breakers' names would otherwise be parsed nine times each at every scrape.
    strings = _Strings()
    encoded = []
    for family in families:
        keys = [strings[value] for labels, _ in family.samples for value in labels]
        values = [
            [value.buckets, value.sum, value.count] if isinstance(value, Histogram) else value
            for _, value in family.samples
        ]
        encoded.append(
            {
                "name": family.name,
                "kind": family.kind,
                "help": family.help,
                "labels": list(family.labels),
                "merge": family.merge,
                "keys": keys,
                "values": values,
            }
        )
    return list(strings), encoded


def _decode(strings: list[str], data: dict[str, Any]) -> MetricFamily:
    width = len(data["labels"])
    keys, values = data["keys"], data["values"]
    lookup = strings.__getitem__
    if width:
        columns = [map(lookup, keys[column::width]) for column in range(width)]
        labels: list[tuple[str, ...]] = list(zip(*columns, strict=True))
    else:
        labels = [()] * len(values)
    if data["kind"] == "histogram":
        values = [
            Histogram(tuple((float(b), float(c)) for b, c in buckets), float(total), float(count))
            for buckets, total, count in values
        ]
    if len(labels) != len(values):
        raise ValueError(f"family {data['name']!r}: {len(labels)} label sets, {len(values)} values")
    return MetricFamily(
        data["name"],
        data["kind"],
        data["help"],
        tuple(data["labels"]),
        list(zip(labels, values, strict=True)),
        data["merge"],
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

    __slots__ = ("alive", "families", "path", "pid", "written")

    def __init__(
        self,
        pid: int,
        written: float,
        alive: bool,
        families: list[MetricFamily],
        path: Path | None = None,
    ) -> None:
        self.pid = pid
        self.written = written
        self.alive = alive
        self.families = families
        self.path = path


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None  # compacted away by another worker since the directory was listed
    except (OSError, ValueError) as error:
        _logger.warning("skipping unreadable metrics snapshot %s: %s", path, error)
        return None
    return data if isinstance(data, dict) else None


def read_snapshots(directory: Path, *, exclude_pid: int | None = None) -> list[Snapshot]:
    """Every readable snapshot in ``directory`` except the live one of ``exclude_pid``.

    Files the archive says it has absorbed are skipped (they are being deleted).
    """
    archive = _load(directory / ARCHIVE)
    absorbed = set(archive.get("absorbed", ())) if archive is not None else set()
    found = []
    own = f"{_PREFIX}{exclude_pid}{_SUFFIX}"
    for path in sorted(directory.glob(f"{_PREFIX}*{_SUFFIX}")):
        if path.name == own or path.name in absorbed:
            continue
        data = archive if path.name == ARCHIVE else _load(path)
        if data is None:
            continue
        try:
            pid = int(data["pid"])
            strings = data["strings"]
            families = [_decode(strings, each) for each in data["families"]]
            written = float(data["written"])
        except (ValueError, KeyError, TypeError, IndexError) as error:
            _logger.warning("skipping unreadable metrics snapshot %s: %s", path, error)
            continue
        alive = bool(data.get("live", True)) and _alive(pid)
        found.append(Snapshot(pid, written, alive, families, path))
    return found


def _dead_by_name(directory: Path) -> int:
    """How many snapshot files belong to exited workers, judged by name (nothing is parsed)."""
    dead = 0
    for path in directory.glob(f"{_PREFIX}*{_SUFFIX}"):
        stem = path.name[len(_PREFIX) : -len(_SUFFIX)]
        if stem == "archive":
            continue
        pid, retired, _ = stem.partition("-")
        if retired or not pid.isdigit() or not _alive(int(pid)):
            dead += 1
    return dead


def compact(directory: Path) -> None:
    """Fold the snapshots of exited workers into one archive file.

    A server that recycles its workers (gunicorn's ``max_requests``) would otherwise leave one
    file per exited worker, each read at every scrape. Only their counters matter (their gauges
    no longer count), so they are summed into ``resilience_kit_archive.json``. The archive lists
    the files it absorbed before they are deleted, so a crash in between never counts them twice.
    One worker compacts at a time (an exclusive lock on a file in the directory); on a platform
    without ``fcntl`` nothing is compacted.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    with (directory / ".resilience_kit.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # another worker is compacting
        try:
            dead = [s for s in read_snapshots(directory) if not s.alive and s.path is not None]
            if len(dead) < 2:
                return
            previous = _load(directory / ARCHIVE) or {}
            still_there = [
                name for name in previous.get("absorbed", ()) if (directory / name).exists()
            ]
            merged = merge_families([], dead)
            names = [s.path.name for s in dead if s.path is not None and s.path.name != ARCHIVE]
            strings, families = _encode(merged)
            data = {
                "pid": 0,
                "written": time.time(),
                "live": False,
                "absorbed": sorted({*still_there, *names}),
                "strings": strings,
                "families": families,
            }
            _write_atomically(directory, directory / ARCHIVE, data)
            for name in [*still_there, *names]:
                with contextlib.suppress(FileNotFoundError):
                    (directory / name).unlink()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomically(directory: Path, path: Path, data: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".resilience_kit-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _add_histograms(a: Histogram, b: Histogram) -> Histogram:
    if [bound for bound, _ in a.buckets] != [bound for bound, _ in b.buckets]:
        return a  # different bucket layouts cannot be added; keep the scraping worker's
    buckets = tuple((bound, x + y) for (bound, x), (_, y) in zip(a.buckets, b.buckets, strict=True))
    return Histogram(buckets, a.sum + b.sum, a.count + b.count)


class _Merged:
    """One family's samples being merged: label sets and values in two parallel lists."""

    __slots__ = ("family", "index", "keys", "values", "written")

    def __init__(self, family: MetricFamily, written: float) -> None:
        self.family = family
        self.keys = [labels for labels, _ in family.samples]
        self.values = [value for _, value in family.samples]
        self.written = [written] * len(self.keys)
        self.index: dict[tuple[str, ...], int] | None = None

    def add(self, family: MetricFamily, written: float, alive: bool) -> None:
        policy = self.family.merge
        if policy != "sum" and not alive:
            return
        keys = [labels for labels, _ in family.samples]
        values = [value for _, value in family.samples]
        if keys == self.keys and policy != "latest" and family.kind != "histogram":
            # The usual case: every worker has the same breakers and policies, in the same
            # order, so the samples line up and combine pairwise.
            combine = (lambda a, b: a + b) if policy == "sum" else max
            self.values = list(map(combine, self.values, values))
            return
        if self.index is None:
            self.index = {labels: position for position, labels in enumerate(self.keys)}
        for labels, value in zip(keys, values, strict=True):
            position = self.index.get(labels)
            if position is None:
                self.index[labels] = len(self.keys)
                self.keys.append(labels)
                self.values.append(value)
                self.written.append(written)
                continue
            current = self.values[position]
            if policy == "sum":
                self.values[position] = (
                    _add_histograms(current, value)
                    if isinstance(current, Histogram) and isinstance(value, Histogram)
                    else current + value
                )
            elif policy == "max":
                self.values[position] = max(current, value)
            elif written > self.written[position]:
                self.values[position] = value
                self.written[position] = written

    def result(self) -> MetricFamily:
        family = self.family
        samples = list(zip(self.keys, self.values, strict=True))
        return MetricFamily(
            family.name, family.kind, family.help, family.labels, samples, family.merge
        )


def merge_families(own: list[MetricFamily], others: Iterable[Snapshot]) -> list[MetricFamily]:
    """``own`` (the scraping worker's live families) merged with the other workers' snapshots.

    Each family combines as its ``merge`` says; an exited worker's snapshot adds only to the
    ``"sum"`` families.
    """
    merged: dict[str, _Merged] = {}
    now = time.time()
    for family in own:
        merged[family.name] = _Merged(family, now)
    for snapshot in others:
        for family in snapshot.families:
            current = merged.get(family.name)
            if current is None:
                if family.merge == "sum" or snapshot.alive:
                    merged[family.name] = _Merged(family, snapshot.written)
            else:
                current.add(family, snapshot.written, snapshot.alive)
    return [each.result() for each in merged.values()]


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
            try:
                if _dead_by_name(self.directory) >= 2:
                    compact(self.directory)
            except Exception:
                _logger.exception("could not compact the metrics snapshots in %s", self.directory)
            if self._stop.wait(self.interval):
                return

    def write(self, *, final: bool = False) -> None:
        """Write one snapshot now (``final``: the process is exiting)."""
        try:
            strings, families = _encode(self.collect())
            data = {
                "pid": os.getpid(),
                "written": time.time(),
                "live": not final,
                "strings": strings,
                "families": families,
            }
            _write_atomically(self.directory, self.path, data)
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
