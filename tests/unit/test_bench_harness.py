"""The benchmark harness's machinery on trivial cases (no peer library needed).

The figures of the benchmark are only as good as this core: the rotation of the case order, the
per-round ratios and medians, and above all the verification that refuses to time a case that
does not do what it claims.
"""

from __future__ import annotations

import importlib
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> Iterator[SimpleNamespace]:
    """The benchmarks package (it lives at the repository root, outside src/)."""
    added = str(ROOT) not in sys.path
    if added:
        sys.path.insert(0, str(ROOT))
    try:
        yield SimpleNamespace(
            h=importlib.import_module("benchmarks._harness"),
            report=importlib.import_module("benchmarks._report"),
            svg=importlib.import_module("benchmarks._svg"),
            sections=importlib.import_module("benchmarks.sections"),
        )
    finally:
        if added:
            sys.path.remove(str(ROOT))


@pytest.fixture
def ctx(bench: SimpleNamespace) -> Iterator[Any]:
    context = bench.h.Context(bench.h.RunSettings(rounds=3, quick=True, quick_calls=10))
    yield context
    context.close()


RESULT = ("result",)


class Scripted:
    """A fake operation whose samples take scripted times: one entry per timed sample."""

    def __init__(self, label: str, ns_per_call: list[float], log: list[str]) -> None:
        self.label = label
        self.ns_per_call = list(ns_per_call)
        self.samples = 0
        self.log = log

    def __call__(self) -> Any:
        return RESULT


class ScriptedKind:
    """A group kind whose timer does not measure: it replays the op's script and logs the order.

    The first sample of every case is the harness's warm-up; the script covers the rounds.
    """

    is_async = False
    raises = False
    workers = 1
    sample_factor = 1.0

    def timer(self, op: Scripted, ctx: Any) -> Any:
        def run(n: int) -> float:
            op.samples += 1
            if op.samples == 1:
                return 0.0  # warm-up
            op.log.append(op.label)
            return op.ns_per_call[op.samples - 2] * n / 1e9

        return run

    def describe(self) -> str:
        return "scripted"


def scripted_group(bench: SimpleNamespace, scripts: dict[str, list[float]], log: list[str]) -> Any:
    group = bench.h.Group("g", "scripted", ScriptedKind())
    for index, (label, costs) in enumerate(scripts.items()):
        op = Scripted(label, costs, log)
        group.add(label, label, baseline=index == 0)(
            lambda ctx, op=op: bench.h.Prepared(op, returns=RESULT)
        )
    return group


def by_label(result: Any) -> dict[str, Any]:
    return {case.label: case for case in result.cases}


# Rotation, medians, ratios ------------------------------------------------------------------


def test_rotation_shifts_the_order_by_one_each_round(bench: SimpleNamespace) -> None:
    items = ["a", "b", "c"]
    assert [bench.h.rotation(items, r) for r in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    assert bench.h.rotation([], 5) == []


def test_each_round_times_every_case_once_in_rotated_order(
    bench: SimpleNamespace, ctx: Any
) -> None:
    log: list[str] = []
    group = scripted_group(bench, {"base": [10] * 4, "x": [20] * 4, "y": [30] * 4}, log)
    bench.h.run_group(group, ctx, rounds=4)
    rounds = [log[i : i + 3] for i in range(0, len(log), 3)]
    assert rounds == [
        ["base", "x", "y"],
        ["x", "y", "base"],
        ["y", "base", "x"],
        ["base", "x", "y"],
    ]


def test_ratios_and_differences_are_per_round_then_median(bench: SimpleNamespace, ctx: Any) -> None:
    log: list[str] = []
    # Round by round: the baseline drifts (10, 20, 30 ns); the case costs 20, 60, 30 ns.
    group = scripted_group(bench, {"base": [10, 20, 30], "case": [20, 60, 30]}, log)
    cases = by_label(bench.h.run_group(group, ctx, rounds=3))
    case, base = cases["case"], cases["base"]
    assert case.status == "ok"
    assert case.per_call_ns == pytest.approx([20, 60, 30])
    assert case.ratios == pytest.approx([2.0, 3.0, 1.0])
    assert case.added_ns == pytest.approx([10, 40, 0])
    # Medians of the per-round figures, not ratios of medians (that would be 30 / 20 = 1.5).
    assert case.ratio == pytest.approx(2.0)
    assert case.added == pytest.approx(10)
    assert case.median_ns == pytest.approx(30)
    assert case.ratio_iqr == pytest.approx((1.5, 2.5))
    assert base.ratio == pytest.approx(1.0)
    assert base.added == pytest.approx(0)


def test_calibration_sizes_a_sample_to_the_target(bench: SimpleNamespace) -> None:
    calls: list[int] = []

    def timer(n: int) -> float:
        calls.append(n)
        return n * 100e-9  # 100 ns per call

    n = bench.h.calibrate(timer, bench.h.SyncLoop(), 0.01)
    assert n == pytest.approx(100_000, rel=0.01)
    assert calls[0] == 1
    assert len(calls) < 12


def test_one_slow_call_does_not_shrink_the_samples(bench: SimpleNamespace) -> None:
    hiccups = [0.01]  # the very first call waits 10 ms on a server; every call costs 100 ns

    def timer(n: int) -> float:
        return (hiccups.pop() if hiccups else 0.0) + n * 100e-9

    n = bench.h.calibrate(timer, bench.h.SyncLoop(), 0.01)
    assert n == pytest.approx(100_000, rel=0.05)


def test_calibration_rounds_to_whole_workers(bench: SimpleNamespace) -> None:
    n = bench.h.calibrate(lambda n: n * 1e-6, bench.h.Threads(64), 0.01)
    assert n % 64 == 0
    assert n >= 64


# Verification -------------------------------------------------------------------------------


def plain_raise() -> None:
    raise ValueError("boom")


async def plain_await() -> Any:
    return RESULT


def verify_case(bench: SimpleNamespace, ctx: Any, kind: Any, prepared: Any) -> Any:
    """Run ``prepared`` as the one case of a group; return its result and how often it ran."""
    group = bench.h.Group("g", "verify", kind)
    if kind.raises:
        baseline = bench.h.Prepared(plain_raise, raises=ValueError)
    elif kind.is_async:
        baseline = bench.h.Prepared(plain_await, returns=RESULT)
    else:
        baseline = bench.h.Prepared(lambda: RESULT, returns=RESULT)
    group.baseline("base")(lambda ctx: baseline)
    timed: list[int] = []
    inner = prepared.op

    if kind.is_async:

        async def op() -> Any:
            timed.append(1)
            return await inner()
    else:

        def op() -> Any:
            timed.append(1)
            return inner()

    prepared.op = op
    group.add("case", "lib")(lambda ctx: prepared)
    result = by_label(bench.h.run_group(group, ctx, rounds=3))["case"]
    return result, len(timed)


def test_a_case_returning_the_wrong_value_is_failed_and_never_timed(
    bench: SimpleNamespace, ctx: Any
) -> None:
    prepared = bench.h.Prepared(lambda: "something else", returns=RESULT)
    result, calls = verify_case(bench, ctx, bench.h.SyncLoop(), prepared)
    assert result.status == "failed"
    assert "verification" in result.reason
    assert "something else" in result.reason
    assert calls == 1  # the verifying call only
    assert result.per_call_ns == []


def test_an_open_breaker_that_lets_the_call_through_is_failed(
    bench: SimpleNamespace, ctx: Any
) -> None:
    class OpenError(Exception):
        pass

    prepared = bench.h.Prepared(lambda: RESULT, raises=OpenError)
    result, _ = verify_case(bench, ctx, bench.h.SyncLoop(raises=True), prepared)
    assert result.status == "failed"
    assert "OpenError to be raised" in result.reason


def test_raising_the_wrong_error_is_failed(bench: SimpleNamespace, ctx: Any) -> None:
    class OpenError(Exception):
        pass

    def the_function_ran() -> None:
        raise ValueError("the wrapped function ran")

    prepared = bench.h.Prepared(the_function_ran, raises=OpenError)
    result, _ = verify_case(bench, ctx, bench.h.SyncLoop(raises=True), prepared)
    assert result.status == "failed"
    assert "ValueError: the wrapped function ran" in result.reason


def test_a_failing_check_fails_the_case(bench: SimpleNamespace, ctx: Any) -> None:
    def check() -> None:
        raise AssertionError("the cached function ran twice")

    prepared = bench.h.Prepared(lambda: RESULT, returns=RESULT, check=check)
    result, calls = verify_case(bench, ctx, bench.h.SyncLoop(), prepared)
    assert result.status == "failed"
    assert "the cached function ran twice" in result.reason
    assert calls == 1


def test_a_case_declaring_nothing_to_verify_is_failed(bench: SimpleNamespace, ctx: Any) -> None:
    result, calls = verify_case(bench, ctx, bench.h.SyncLoop(), bench.h.Prepared(lambda: RESULT))
    assert result.status == "failed"
    assert "declares nothing" in result.reason
    assert calls == 0


def test_a_case_that_stops_doing_its_job_while_timed_is_failed(
    bench: SimpleNamespace, ctx: Any
) -> None:
    state = {"calls": 0}

    def op() -> Any:
        state["calls"] += 1
        return RESULT if state["calls"] == 1 else "stale"

    prepared = bench.h.Prepared(op, returns=RESULT)
    result, _ = verify_case(bench, ctx, bench.h.SyncLoop(), prepared)
    assert result.status == "failed"
    assert "after timing" in result.reason
    assert not result.timed


def test_reset_runs_before_each_verifying_call(bench: SimpleNamespace, ctx: Any) -> None:
    counter = [0]

    def op() -> Any:
        counter[0] += 1
        return RESULT

    def check() -> None:
        assert counter[0] == 1, f"ran {counter[0]} times"

    prepared = bench.h.Prepared(
        op, returns=RESULT, check=check, reset=lambda: counter.__setitem__(0, 0)
    )
    result, _ = verify_case(bench, ctx, bench.h.SyncLoop(), prepared)
    assert result.status == "ok", result.reason


def test_a_failed_baseline_fails_the_group(bench: SimpleNamespace, ctx: Any) -> None:
    group = bench.h.Group("g", "no baseline", bench.h.SyncLoop())
    group.baseline("base")(lambda ctx: bench.h.Prepared(lambda: "wrong", returns=RESULT))
    group.add("case", "lib")(lambda ctx: bench.h.Prepared(lambda: RESULT, returns=RESULT))
    cases = by_label(bench.h.run_group(group, ctx, rounds=2))
    assert cases["base"].status == "failed"
    assert cases["case"].status == "failed"
    assert "baseline" in cases["case"].reason


def test_an_unavailable_baseline_makes_the_group_unavailable(
    bench: SimpleNamespace, ctx: Any
) -> None:
    def unreachable(ctx: Any) -> Any:
        raise bench.h.Unavailable("Redis unreachable")

    closed: list[str] = []
    group = bench.h.Group("g", "no server", bench.h.SyncLoop())
    group.baseline("base")(unreachable)
    group.add("case", "lib")(
        lambda ctx: bench.h.Prepared(
            lambda: RESULT, returns=RESULT, close=lambda: closed.append("case")
        )
    )
    cases = by_label(bench.h.run_group(group, ctx, rounds=2))
    assert cases["base"].status == "unavailable"
    assert cases["case"].status == "unavailable"
    assert "Redis unreachable" in cases["case"].reason
    assert closed == ["case"]  # what was set up is still released


def test_unavailable_cases_are_reported_and_the_rest_still_runs(
    bench: SimpleNamespace, ctx: Any
) -> None:
    def not_built(ctx: Any) -> Any:
        raise bench.h.Unavailable("not yet implemented")

    def not_installed(ctx: Any) -> Any:
        import a_peer_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401

    def broken(ctx: Any) -> Any:
        raise RuntimeError("set-up bug")

    group = bench.h.Group("g", "mixed", bench.h.SyncLoop())
    group.baseline("base")(lambda ctx: bench.h.Prepared(lambda: RESULT, returns=RESULT))
    group.add("ours", "resilience-kit")(not_built)
    group.add("peer", "peer")(not_installed)
    group.add("broken", "broken")(broken)
    group.add("fine", "fine")(lambda ctx: bench.h.Prepared(lambda: RESULT, returns=RESULT))
    cases = by_label(bench.h.run_group(group, ctx, rounds=2))
    assert (cases["ours"].status, cases["ours"].reason) == ("unavailable", "not yet implemented")
    assert cases["peer"].status == "unavailable"
    assert "a_peer_that_is_not_installed" in cases["peer"].reason
    assert cases["broken"].status == "failed"
    assert "set-up bug" in cases["broken"].reason
    assert cases["fine"].timed
    assert len(cases["fine"].ratios) == 2


# The real timers ----------------------------------------------------------------------------


def test_real_sync_async_thread_and_task_loops_time_and_verify(
    bench: SimpleNamespace, ctx: Any
) -> None:
    h = bench.h

    def work() -> Any:
        return RESULT

    async def awork() -> Any:
        return RESULT

    def fail() -> None:
        raise ValueError("boom")

    async def afail() -> None:
        raise ValueError("boom")

    def wrapped() -> Any:
        return work()

    async def awrapped() -> Any:
        return await awork()

    kinds = [
        (h.SyncLoop(), work, wrapped, {"returns": RESULT}),
        (h.AsyncLoop(), awork, awrapped, {"returns": RESULT}),
        (h.SyncLoop(raises=True), fail, fail, {"raises": ValueError}),
        (h.AsyncLoop(raises=True), afail, afail, {"raises": ValueError}),
        (h.Threads(4), work, wrapped, {"returns": RESULT}),
        (h.Tasks(50), awork, awrapped, {"returns": RESULT}),
    ]
    for kind, base, case, expectation in kinds:
        group = h.Group("g", kind.describe(), kind)
        group.baseline("base")(lambda ctx, base=base, e=expectation: h.Prepared(base, **e))
        group.add("case", "lib")(lambda ctx, case=case, e=expectation: h.Prepared(case, **e))
        result = by_label(h.run_group(group, ctx, rounds=3))["case"]
        assert result.timed, (kind.describe(), result.reason)
        assert len(result.ratios) == 3
        assert all(r > 0 for r in result.ratios)
        assert result.calls_per_sample % kind.workers == 0


def test_async_verification_awaits_the_call(bench: SimpleNamespace, ctx: Any) -> None:
    async def wrong() -> Any:
        return "not the result"

    result, _ = verify_case(
        bench, ctx, bench.h.AsyncLoop(), bench.h.Prepared(wrong, returns=RESULT)
    )
    assert result.status == "failed"
    assert "not the result" in result.reason


def test_section_context_wraps_the_whole_section(bench: SimpleNamespace, ctx: Any) -> None:
    import contextlib

    active = []

    @contextlib.contextmanager
    def around() -> Iterator[None]:
        active.append(True)
        yield
        active.append(False)

    seen = []
    section = bench.h.Section("s", "S", "d", context=around)
    group = section.group("g", "G", bench.h.SyncLoop())
    group.baseline("base")(lambda ctx: bench.h.Prepared(lambda: RESULT, returns=RESULT))

    @group.add("case", "lib")
    def case(ctx: Any) -> Any:
        seen.append(list(active))
        return bench.h.Prepared(lambda: RESULT, returns=RESULT)

    bench.h.run_section(section, ctx)
    assert seen == [[True]]
    assert active == [True, False]


# Targets, the page, the sections --------------------------------------------------------------


def scripted_section(bench: SimpleNamespace, ctx: Any, costs: dict[str, list[float]]) -> Any:
    section = bench.h.Section("demo", "Demo", "A scripted section.")
    group = scripted_group(bench, costs, [])
    section.groups.append(group)
    section.target("g", "fast", 50, "fast stays under 50 ns")
    section.target("g", "slow", 50, "slow stays under 50 ns")
    section.target("g", "missing", 50, "a case that never ran")
    return bench.h.run_section(section, ctx)


def test_targets_are_met_not_met_or_not_measured(bench: SimpleNamespace, ctx: Any) -> None:
    result = scripted_section(
        bench, ctx, {"base": [100, 100, 100], "fast": [140, 150, 145], "slow": [200, 260, 230]}
    )
    verdicts = {t.target.case: t.met for t in bench.h.evaluate_targets([result])}
    assert verdicts == {"fast": True, "slow": False, "missing": None}


def test_the_page_shows_verdicts_figures_and_a_valid_chart(
    bench: SimpleNamespace, ctx: Any
) -> None:
    import datetime

    result = scripted_section(
        bench, ctx, {"base": [100, 100, 100], "fast": [140, 150, 145], "slow": [200, 260, 230]}
    )
    targets = bench.h.evaluate_targets([result])
    info = bench.report.RunInfo(
        ctx.settings, datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    )
    info.machine = {"CPU": "test", "Cores": "2"}
    page = bench.report.render_markdown([result], targets, info, {"demo": "b/demo.svg"})
    assert "| fast stays under 50 ns | ≤ 50 | +45 [42, 48] | 1.45x | ✅ met |" in page
    assert "❌ not met" in page
    assert "not measured" in page
    assert "![Demo](b/demo.svg)" in page
    svg = bench.svg.chart(result)
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag.endswith("svg")
    assert "slow" in svg
    assert "fast" in svg


def test_every_section_imports_without_peers_and_has_one_baseline_per_group(
    bench: SimpleNamespace,
) -> None:
    sections = bench.sections.load_sections()
    keys = [s.key for s in sections]
    assert len(keys) == len(set(keys))
    assert {"breaker", "retry", "cache", "sql", "shared_state"} <= set(keys)
    for section in sections:
        assert section.groups, section.key
        for group in section.groups:
            assert sum(case.baseline for case in group.cases) == 1, (section.key, group.key)
            assert len(group.cases) >= 2, (section.key, group.key)
        for target in section.targets:
            group = next(g for g in section.groups if g.key == target.group)
            assert any(case.label == target.case for case in group.cases), target
