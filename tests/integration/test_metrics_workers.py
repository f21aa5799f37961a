"""Several real uvicorn worker processes behind one scrape (multi-process metrics)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

APPS = Path(__file__).parent / "apps"
WORKERS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(APPS),
            "metrics_workers:app",
            "--workers",
            str(WORKERS),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "RK_METRICS_DIR": str(tmp_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for(url: str, condition: Callable[[dict], bool], what: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 60
    last: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        try:
            last = scrape(url)
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        if condition(last):
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; last scrape: {sorted(last.items())[:40]}")


SUCCESSES = (
    "resilience_kit_breaker_calls_total",
    (("breaker", "workers-shared"), ("outcome", "success")),
)


def worker_pids(samples: dict) -> set[int]:  # type: ignore[type-arg]
    return {
        int(match.group(1))
        for (name, labels), _ in samples.items()
        if name == "resilience_kit_breaker_state"
        and (match := re.fullmatch(r"worker-(\d+)", dict(labels)["breaker"]))
    }


def test_one_scrape_merges_every_worker_and_keeps_an_exited_workers_counters(
    server: str,
) -> None:
    deadline = time.monotonic() + 60
    while True:
        samples = wait_for(
            server,
            lambda s: s.get(SUCCESSES) == 10 * WORKERS and len(worker_pids(s)) == WORKERS,
            f"{WORKERS} workers' figures in one scrape",
        )
        pids = worker_pids(samples)
        # Whichever worker answers, the scrape is the same merged view, once every worker has
        # written a snapshot since its calls (until then, a worker's file may predate them:
        # one answering worker can show all 30 while another still reads a stale 0).
        views = [scrape(server) for _ in range(10)]
        if all(v.get(SUCCESSES) == 10 * WORKERS and worker_pids(v) == pids for v in views):
            break
        assert time.monotonic() < deadline, [v.get(SUCCESSES) for v in views]
        time.sleep(0.2)

    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    # The server replaces the worker; the new one makes its own ten calls. The killed worker
    # wrote no final snapshot: its counters still count, its gauges no longer do.
    samples = wait_for(
        server,
        lambda s: (
            s.get(SUCCESSES) == 10 * (WORKERS + 1)
            and len(worker_pids(s)) == WORKERS
            and victim not in worker_pids(s)
        ),
        "the replacement worker, with the killed worker's counters kept",
    )
    assert victim not in worker_pids(samples)


FORKING_SERVER = """
import json, os, sys, time, warnings
from prometheus_client import CollectorRegistry
from resilience_kit import CircuitBreaker, prometheus

registry = CollectorRegistry()
# Registered before the fork, as a server that imports the app first (gunicorn --preload).
prometheus.register(registry=registry, multiprocess_dir=sys.argv[1], snapshot_interval=0.1)
shared = CircuitBreaker("forked-shared")
children = []
for _ in range(3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:
        for _ in range(5):
            shared.call(lambda: None)
        time.sleep(0.5)  # the child's own writer thread snapshots it meanwhile
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
shared.call(lambda: None)
text = prometheus.generate_latest(registry).decode()
line = 'resilience_kit_breaker_calls_total{breaker="forked-shared",outcome="success"}'
print(json.dumps([l for l in text.splitlines() if l.startswith(line)]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_registered_before_the_fork_every_child_writes_its_own_snapshot(tmp_path: Path) -> None:
    import json

    result = subprocess.run(
        [sys.executable, "-c", FORKING_SERVER, str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert lines == [
        'resilience_kit_breaker_calls_total{breaker="forked-shared",outcome="success"} 16.0'
    ], "3 children x 5 calls, exited, plus the parent's own call"
