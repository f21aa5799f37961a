"""The benchmark harness's machinery on trivial cases (no peer library needed).

The figures of the benchmark are only as good as this core: the rotation of the case order, the
per-round ratios and medians, and above all the verification that refuses to time a case that
does not do what it claims.
"""

from __future__ import annotations

import datetime
import importlib
import logging
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

VALGRIND = shutil.which("valgrind")

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
            common=importlib.import_module("benchmarks.sections._common"),
            main=importlib.import_module("benchmarks.__main__"),
            cg=importlib.import_module("benchmarks._callgrind"),
            count=importlib.import_module("benchmarks._count"),
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
    group.add("ours", "resilience-kit-py")(not_built)
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


def test_the_page_states_the_sample_length_each_kind_really_used(
    bench: SimpleNamespace, ctx: Any
) -> None:
    h = bench.h
    section = h.Section("demo", "Demo", "Threads and tasks with their own sample factors.")
    for key, kind in (
        ("plain", h.SyncLoop()),
        ("threads", h.Threads(2, sample_factor=3.0)),
        ("tasks", h.Tasks(10, sample_factor=7.0)),
    ):
        section.group(key, key, kind)
    results = [h.SectionResult(section, [h.GroupResult(g, []) for g in section.groups])]
    settings = h.RunSettings(sample_seconds=0.02)
    info = bench.report.RunInfo(
        settings, datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    )
    page = bench.report.render_markdown(results, [], info, {})
    assert "about 20 ms (60 ms for threads; 140 ms for tasks, whose start-up" in page

    plain = h.Section("plain", "Plain", "No longer samples.")
    plain.group("g", "g", h.SyncLoop())
    page = bench.report.render_markdown(
        [h.SectionResult(plain, [h.GroupResult(plain.groups[0], [])])], [], info, {}
    )
    assert "about 20 ms. Async cases" in page


# What fails the run -------------------------------------------------------------------------


def test_a_section_cannot_declare_a_module_both_required_and_future(
    bench: SimpleNamespace,
) -> None:
    with pytest.raises(ValueError, match="both required and future"):
        bench.h.Section("s", "S", "d", requires=("resilience_kit.x",), future=("resilience_kit.x",))


def test_ours_is_not_yet_implemented_only_while_the_module_does_not_exist(
    bench: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resilience_kit

    ours, h = bench.common.ours, bench.h
    with pytest.raises(h.NotYetImplemented) as absent:
        ours("resilience_kit._bench_absent", "Thing")
    assert absent.value.module == "resilience_kit._bench_absent"
    with pytest.raises(h.NotYetImplemented):  # a missing package above it is absent too
        ours("resilience_kit._bench_absent.sub", "Thing")
    # The module exists but its name does not (a rename): an error, not "not yet implemented".
    with pytest.raises(AttributeError, match="no_such_name"):
        ours("resilience_kit.retry", "no_such_name")
    # The module exists but does not import (a broken dependency): an error as well.
    (tmp_path / "_bench_broken.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.setattr(resilience_kit, "__path__", [*resilience_kit.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "resilience_kit._bench_broken", raising=False)
    with pytest.raises(ImportError) as broken:
        ours("resilience_kit._bench_broken", "Thing")
    assert not isinstance(broken.value, h.Unavailable)
    # A name the package exports, looked up in a module that does not exist: the benchmark
    # points at the wrong place, which must not pass for "not yet implemented".
    with pytest.raises(RuntimeError, match="CircuitBreaker exists"):
        ours("resilience_kit._bench_absent", "CircuitBreaker")


def ours_section(bench: SimpleNamespace, setup: Any, **declared: Any) -> Any:
    """A section with one resilience_kit case built by ``setup`` next to a plain baseline."""
    section = bench.h.Section("ours", "Ours", "One resilience_kit case.", **declared)
    group = section.group("g", "G", bench.h.SyncLoop())
    group.baseline("base")(lambda ctx: bench.h.Prepared(lambda: RESULT, returns=RESULT))
    group.add("resilience_kit", "resilience-kit-py")(setup)
    return section


def uses(module: str, name: str) -> Any:
    """A case setup that needs the resilience_kit name ``module.name``."""

    def setup(ctx: Any) -> Any:
        from benchmarks._harness import Prepared
        from benchmarks.sections._common import ours

        ours(module, name)
        return Prepared(lambda: RESULT, returns=RESULT)

    return setup


def test_a_future_module_that_does_not_exist_is_unavailable_and_the_run_passes(
    bench: SimpleNamespace, ctx: Any
) -> None:
    section = ours_section(
        bench,
        uses("resilience_kit._bench_absent", "Thing"),
        future=("resilience_kit._bench_absent",),
    )
    result = bench.h.run_section(section, ctx)
    case = by_label(result.groups[0])["resilience_kit"]
    assert (case.status, case.reason) == (
        "unavailable",
        "not yet implemented (resilience_kit._bench_absent.Thing)",
    )
    assert bench.h.problems([result], []) == []


def test_a_missing_module_the_section_does_not_declare_future_fails(
    bench: SimpleNamespace, ctx: Any
) -> None:
    section = ours_section(bench, uses("resilience_kit._bench_absent", "Thing"))
    result = bench.h.run_section(section, ctx)
    case = by_label(result.groups[0])["resilience_kit"]
    assert case.status == "failed"
    assert "does not declare it future" in case.reason
    assert len(bench.h.problems([result], [])) == 1


def test_resilience_kit_unavailable_for_any_other_reason_fails(
    bench: SimpleNamespace, ctx: Any
) -> None:
    def unreachable(ctx: Any) -> Any:
        raise bench.h.Unavailable("Redis unreachable")

    def not_installed(ctx: Any) -> Any:
        import resilience_kit_part_that_is_not_there  # type: ignore[import-not-found]  # noqa: F401

    for setup in (unreachable, not_installed):
        section = ours_section(bench, setup, requires=("resilience_kit.breaker",))
        result = bench.h.run_section(section, ctx)
        case = by_label(result.groups[0])["resilience_kit"]
        assert case.status == "failed", setup
        assert bench.h.problems([result], []), setup


def test_a_required_module_that_does_not_import_fails_the_section(
    bench: SimpleNamespace, ctx: Any
) -> None:
    section = ours_section(
        bench,
        lambda ctx: bench.h.Prepared(lambda: RESULT, returns=RESULT),
        requires=("resilience_kit._bench_absent",),
    )
    result = bench.h.run_section(section, ctx)
    assert result.errors
    assert "requires resilience_kit._bench_absent" in result.errors[0]
    assert bench.h.problems([result], [])


def test_a_target_not_measured_is_a_problem(bench: SimpleNamespace, ctx: Any) -> None:
    result = scripted_section(
        bench, ctx, {"base": [100, 100, 100], "fast": [140, 150, 145], "slow": [200, 260, 230]}
    )
    found = bench.h.problems([result], bench.h.evaluate_targets([result]))
    assert found == ["target not measured: a case that never ran (no such case)"]


# main(): the exit status ----------------------------------------------------------------------


@pytest.fixture
def run_main(bench: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``main(argv, sections)``: a run over the given sections (all of them when None)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    real = bench.main.load_sections

    def run(argv: list[str], sections: list[Any] | None = None) -> int:
        if sections is not None:
            monkeypatch.setattr(
                bench.main,
                "load_sections",
                lambda only=None: [s for s in sections if only is None or s.key in only],
            )
        else:
            monkeypatch.setattr(bench.main, "load_sections", real)
        code: int = bench.main.main(argv)
        return code

    yield run
    root.handlers[:], root.level = handlers, level  # main() sets up logging for the run


def passing_section(bench: SimpleNamespace, key: str = "fine") -> Any:
    section = bench.h.Section(key, "Fine", "A case that does what it claims.")
    group = section.group("g", "G", bench.h.SyncLoop())
    group.baseline("base")(lambda ctx: bench.h.Prepared(lambda: RESULT, returns=RESULT))
    group.add("case", "lib")(lambda ctx: bench.h.Prepared(lambda: RESULT, returns=RESULT))
    return section


def test_main_exits_0_when_everything_ran_and_verified(
    bench: SimpleNamespace, run_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(["--quick"], [passing_section(bench)]) == 0
    assert "all cases verified" in capsys.readouterr().out


def test_main_exits_1_when_a_case_fails_verification(
    bench: SimpleNamespace, run_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    section = passing_section(bench, "wrong")
    section.groups[0].add("liar", "lib")(
        lambda ctx: bench.h.Prepared(lambda: "not the result", returns=RESULT)
    )
    assert run_main(["--quick"], [passing_section(bench), section]) == 1
    err = capsys.readouterr().err
    assert "wrong/g/liar: verification" in err


def test_main_exits_1_when_an_existing_primitive_is_unavailable(
    bench: SimpleNamespace, run_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(ctx: Any) -> Any:
        raise bench.h.Unavailable("Redis unreachable")

    section = ours_section(bench, unreachable, requires=("resilience_kit.breaker",))
    assert run_main(["--quick"], [section]) == 1
    assert "resilience_kit must be measured here" in capsys.readouterr().err


def test_main_exits_1_when_a_renamed_name_breaks_the_real_retry_section(
    run_main: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import resilience_kit.retry

    monkeypatch.delattr(resilience_kit.retry, "retry_stats")  # an accidental rename
    assert run_main(["--quick", "--sections", "retry", "--rounds", "1"]) == 1
    err = capsys.readouterr().err
    assert "retry/success_sync/resilience_kit: setup raised AttributeError" in err
    assert "target not measured: Retry, success path, sync" in err


def test_main_exits_0_for_the_real_sections_of_what_exists_now(
    run_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Peers missing from the test environment are unavailable (allowed); every resilience_kit
    # row, resilient() included, must set up, verify and be timed.
    argv = ["--quick", "--sections", "breaker,retry,retry_attempts", "--rounds", "1"]
    assert run_main(argv) == 0
    out = capsys.readouterr().out
    assert "resilience_kit resilient(breaker, retry)" in out
    assert "every target measured" in out


def test_main_exits_0_when_only_future_primitives_are_unavailable(
    bench: SimpleNamespace, run_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    section = ours_section(
        bench,
        uses("resilience_kit._bench_absent", "Thing"),
        future=("resilience_kit._bench_absent",),
    )
    assert run_main(["--quick"], [passing_section(bench), section]) == 0
    assert "not yet implemented (resilience_kit._bench_absent.Thing)" in capsys.readouterr().out


def test_main_exits_1_when_a_target_is_not_measured(
    bench: SimpleNamespace, run_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    section = passing_section(bench)
    section.target("g", "nosuch", 100, "a case that does not exist")
    assert run_main(["--quick"], [section]) == 1
    assert "target not measured: a case that does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rounds", "-1"], "--rounds: must be at least 1, got -1"),
        (["--rounds", "0"], "--rounds: must be at least 1"),
        (["--rounds", "two"], "--rounds: must be a whole number"),
        (["--sample-ms", "0"], "--sample-ms: must be a finite number > 0"),
        (["--sample-ms", "-5"], "--sample-ms: must be a finite number > 0"),
        (["--sample-ms", "nan"], "--sample-ms: must be a finite number > 0"),
        (["--sections", "fine,nosuch"], "unknown section(s) nosuch; valid: fine, other"),
        (["--sections", ","], "no section given; valid: fine, other"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_main_exits_2_for_bad_arguments(
    bench: SimpleNamespace,
    run_main: Any,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    sections = [passing_section(bench, "fine"), passing_section(bench, "other")]
    assert run_main(["--quick", *argv], sections) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "all cases verified" not in captured.out  # nothing ran


def test_main_runs_only_the_sections_named(
    bench: SimpleNamespace, run_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = passing_section(bench, "broken")
    broken.groups[0].add("liar", "lib")(lambda ctx: bench.h.Prepared(lambda: 1, returns=RESULT))
    assert run_main(["--quick", "--sections", "fine"], [passing_section(bench), broken]) == 0
    assert run_main(["--list"], [passing_section(bench), broken]) == 0
    assert "broken" in capsys.readouterr().out


def test_every_resilience_kit_case_belongs_to_a_section_that_declares_its_modules(
    bench: SimpleNamespace,
) -> None:
    for section in bench.sections.load_sections():
        ours_cases = [c for g in section.groups for c in g.cases if c.library == bench.h.OURS]
        if ours_cases:
            assert section.requires or section.future, section.key
        for module in (*section.requires, *section.future):
            assert module.startswith("resilience_kit."), (section.key, module)
        for module in section.requires:
            importlib.import_module(module)  # what exists now must import


def test_the_composition_rows_compare_resilient_with_the_stacked_peers(
    bench: SimpleNamespace,
) -> None:
    retry = next(s for s in bench.sections.load_sections() if s.key == "retry")
    assert "resilience_kit.composition" in retry.requires
    groups = {g.key: g for g in retry.groups}
    sync = {c.label: c for c in groups["composed_sync"].cases}
    asynchronous = {c.label: c for c in groups["composed_async"].cases}
    assert sync["plain call"].baseline
    assert asynchronous["plain await"].baseline
    assert sync["resilience_kit resilient(breaker, retry)"].library == bench.h.OURS
    assert asynchronous["resilience_kit resilient(breaker, retry)"].library == bench.h.OURS
    assert "tenacity @retry over pybreaker (stacked)" in sync
    # pybreaker has no async decorator: no stacked async row; pyresilience does both in one.
    both = "pyresilience @resilient(circuit_breaker, retry)"
    assert sync[both].library == asynchronous[both].library == "pyresilience"
    assert len(asynchronous) == 3


# Instruction counts (--instructions) -------------------------------------------------------

DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  python -m benchmarks._count
part: 3

desc: I1 cache:
desc: Timerange: Basic block 100 - 200
desc: Trigger: Client Request: resilience_kit benchmarks: loop 1

positions: line
events: Ir Dr
summary: 1234567 89

fl=(1) ceval.c
fn=(1) _PyEval_EvalFrameDefault
0 1234567 89
totals: 1234567 89
"""


def test_a_dump_gives_its_instruction_total_and_trigger(bench: SimpleNamespace) -> None:
    cg = bench.cg
    assert cg.parse_dump(DUMP) == 1_234_567
    assert cg.dump_trigger(DUMP) == "Client Request: resilience_kit benchmarks: loop 1"
    # Older versions write only totals:; trailing zero columns may be left out.
    assert cg.parse_dump("events: Dr Ir\ntotals: 5 77\n") == 77
    assert cg.parse_dump("events: Dr Ir\nsummary: 5\n") == 0
    assert cg.dump_trigger("events: Ir\nsummary: 1\n") == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello\n", "not a callgrind dump"),
        ("events: Ir\n", "not a callgrind dump"),
        ("events: Dr\nsummary: 12\n", "does not count instructions"),
        ("events: Ir\nsummary: lots\n", "not a number"),
    ],
)
def test_a_dump_that_is_not_callgrinds_is_refused(
    bench: SimpleNamespace, text: str, message: str
) -> None:
    with pytest.raises(bench.cg.CallgrindError, match=message):
        bench.cg.parse_dump(text)


def test_the_difference_of_n_and_2n_calls_cancels_the_fixed_cost(bench: SimpleNamespace) -> None:
    fixed, per_call, n = 123_456, 2_467, 1_000
    assert bench.cg.per_call(fixed + n * per_call, fixed + 2 * n * per_call, n) == per_call
    assert bench.cg.per_call(1_000, 1_500, 100) == 5.0
    with pytest.raises(ValueError, match="calls must be at least 1"):
        bench.cg.per_call(1, 2, 0)


def test_the_calls_counted_shrink_for_a_costly_call_within_bounds(bench: SimpleNamespace) -> None:
    calls_for, budget = bench.count.calls_for, bench.count.BUDGET
    assert calls_for(400 * 10, 10, 1_000, 1) == 1_000  # cheap: the most asked for
    assert calls_for(400_000 * 10, 10, 1_000, 1) == budget // 400_000  # costly: about the budget
    assert calls_for(10**12, 10, 1_000, 1) == bench.count.MIN_CALLS  # never fewer than this
    assert calls_for(400 * 10, 10, 10, 1) == 10  # quick: N below the minimum is kept
    assert calls_for(400 * 10_000, 10_000, 1_000, 10_000) == 10_000  # whole workers


def test_a_measure_reads_the_dump_its_marker_made_and_refuses_a_split_count(
    bench: SimpleNamespace, tmp_path: Path
) -> None:
    out = tmp_path / "callgrind.out"
    dumps = bench.cg.Dumps(out)
    made: list[int] = []

    def loop(n: int) -> None:  # stands in for callgrind, which writes at the dump request
        made.append(n)
        text = DUMP.replace("1234567 89", f"{n * 10} 0").replace("loop 1", f"loop {len(made)}")
        Path(f"{out}.{len(made)}").write_text(text)

    assert dumps.measure(loop, 7) == 70
    assert not Path(f"{out}.1").exists()  # read, then removed
    assert dumps.measure(loop, 14) == 140

    def split(n: int) -> None:  # a stray dump request inside the loop: two dumps for one loop
        loop(n)
        loop(n)

    with pytest.raises(bench.cg.CallgrindError, match="the count is split"):
        dumps.measure(split, 1)


def test_a_measure_outside_callgrind_says_so(bench: SimpleNamespace, tmp_path: Path) -> None:
    # The markers' machine code runs here too: outside valgrind it does nothing.
    with pytest.raises(bench.cg.CallgrindError, match="does not run under valgrind"):
        bench.cg.Dumps(tmp_path / "none").measure(lambda n: None, 3)


@pytest.mark.parametrize(
    "trigger",
    [
        "Program termination",
        "--dump-before=getppid",
        "Client Request: resilience_kit benchmarks: loop 2",  # another measure's label
        "Client Request",  # a bare CALLGRIND_DUMP_STATS from some other code
    ],
)
def test_a_dump_from_another_trigger_is_refused(
    bench: SimpleNamespace, tmp_path: Path, trigger: str
) -> None:
    out = tmp_path / "cg.out"

    def loop(n: int) -> None:
        Path(f"{out}.1").write_text(
            DUMP.replace("Client Request: resilience_kit benchmarks: loop 1", trigger)
        )

    with pytest.raises(bench.cg.CallgrindError, match="not made by the marker"):
        bench.cg.Dumps(out).measure(loop, 1)


def test_the_client_request_is_a_no_op_outside_valgrind(bench: SimpleNamespace) -> None:
    markers = importlib.import_module("benchmarks._markers")
    assert markers.Request(markers.RUNNING_ON_VALGRIND)() == 0
    assert markers.zero()() == 0
    assert markers.dump("nothing listens")() == 0


def counted_section(bench: SimpleNamespace, figures: dict[str, dict[str, float | None]]) -> Any:
    """A section result whose cases carry the given instructions per call, by group."""
    h = bench.h
    section = h.Section("demo", "Demo", "Counted.")
    groups = []
    for key, cases in figures.items():
        group = section.group(key, key, h.SyncLoop())
        results = []
        for index, (label, instructions) in enumerate(cases.items()):
            result = h.CaseResult(label, "lib", baseline=index == 0)
            result.instructions = instructions
            results.append(result)
        groups.append(h.GroupResult(group, results))
    return section, h.SectionResult(section, groups)


def test_instruction_targets_compare_added_or_total_figures(bench: SimpleNamespace) -> None:
    section, result = counted_section(
        bench,
        {
            "closed": {"plain": 400, "pass-through": 1_400, "window": 3_400, "heavy": 17_400},
            "open": {"raise": 3_000, "ours": 5_700},
            "fallback": {"answer": 500, "ours": 5_600},
        },
    )
    section.instruction_target("window", ("closed", "window"), ("closed", "pass-through"), 2.5)
    section.instruction_target("heavy", ("closed", "heavy"), ("closed", "pass-through"), 2.5)
    section.instruction_target(
        "fallback", ("fallback", "ours"), ("open", "ours"), 1.0, measure="total", strict=True
    )
    section.instruction_target(
        "equal", ("fallback", "ours"), ("fallback", "ours"), 1.0, measure="total", strict=True
    )
    found = {t.target.title: t for t in bench.h.evaluate_instruction_targets([result])}
    assert (found["window"].value, found["window"].reference) == (3_000, 1_000)
    assert found["window"].ratio == 3.0
    assert found["window"].met is False  # 3.0x > 2.5x
    assert found["heavy"].met is False
    assert (found["fallback"].value, found["fallback"].reference) == (5_600, 5_700)
    assert found["fallback"].met is True  # the totals: 5,600 < 5,700
    assert found["equal"].met is False  # "costs less" is strict
    section.instruction_target("ok", ("closed", "window"), ("closed", "pass-through"), 3.0)
    ok = bench.h.evaluate_instruction_targets([result])[-1]
    assert (ok.ratio, ok.met) == (3.0, True)  # at the limit is within it


def test_an_instruction_target_not_counted_is_a_problem(bench: SimpleNamespace) -> None:
    section, result = counted_section(
        bench, {"g": {"base": 400, "case": None, "ref": 900}, "nobase": {"base": None, "x": 5}}
    )
    result.groups[0].cases[1].count_problem = "verification after counting: it lied"
    section.instruction_target("lied", ("g", "case"), ("g", "ref"), 2.5)
    section.instruction_target("absent", ("g", "nosuch"), ("g", "ref"), 2.5)
    section.instruction_target("no base", ("nobase", "x"), ("g", "ref"), 2.5)
    section.instruction_target("free", ("g", "ref"), ("g", "base"), 2.5)  # reference adds 0
    counted = bench.h.evaluate_instruction_targets([result])
    assert [t.met for t in counted] == [None, None, None, None]
    found = bench.h.problems([result], [], counted)
    assert "target not counted: lied (g/case: verification after counting: it lied)" in found
    assert "target not counted: absent (no case g/nosuch)" in found
    assert "target not counted: no base (nobase: the baseline was not counted)" in found
    assert any(p.startswith("target not counted: free (the reference's figure is 0") for p in found)
    assert "demo/g/case: instructions: verification after counting: it lied" in found


def test_instruction_targets_refuse_a_bad_declaration(bench: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="measure must be"):
        bench.h.InstructionTarget("t", "g", "c", "g", "r", 2.5, measure="median")
    with pytest.raises(ValueError, match="max_ratio must be"):
        bench.h.InstructionTarget("t", "g", "c", "g", "r", 0)


def test_counts_are_merged_beside_the_timings(bench: SimpleNamespace, ctx: Any) -> None:
    result = scripted_section(bench, ctx, {"base": [100] * 3, "fast": [150] * 3, "slow": [200] * 3})
    records = {
        "demo": {
            "errors": [],
            "groups": [
                {
                    "key": "g",
                    "cases": [
                        {"label": "base", "status": "ok", "instructions": 400.0, "calls": 1000},
                        {"label": "fast", "status": "ok", "instructions": 1400.0, "calls": 1000},
                        {"label": "slow", "status": "failed", "reason": "verification: it lied"},
                    ],
                }
            ],
        }
    }
    bench.cg.merge([result], records)
    cases = by_label(result.groups[0])
    assert (cases["fast"].instructions, cases["fast"].instruction_calls) == (1400.0, 1000)
    assert result.groups[0].added_instructions(cases["fast"]) == 1000.0
    assert result.groups[0].instruction_ratio(cases["fast"]) == 3.5
    assert cases["slow"].instructions is None
    assert cases["slow"].count_problem == "verification: it lied"
    assert "demo/g/slow: instructions: verification: it lied" in bench.h.problems([result], [])
    info = bench.report.RunInfo(
        ctx.settings, datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    )
    info.counted_calls = 1000
    page = bench.report.render_markdown([result], [], info, {}, counted_targets=[])
    assert "| fast | 150 | +50 | 1.50x | 1.50x, 1.50x | 1,400 | +1,000 | 3.50x | 10 |" in page
    assert "not counted: verification: it lied" in page
    assert "## Targets judged on instruction counts" in page


def test_a_child_that_left_no_record_fails_its_sections(
    bench: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "valgrind" that exits at once: the parent reports it for every section it was given.
    section = passing_section(bench, "fine")
    records = bench.cg.count([section], calls=10, quick=True, jobs=2, valgrind="/bin/false")
    assert records["fine"]["groups"] == []
    assert "the callgrind run exited with status 1 and no record" in records["fine"]["errors"][0]
    results = bench.cg.as_results([section], records)
    assert bench.h.problems(results, [])[0].startswith("fine: the callgrind run exited")


def test_without_valgrind_the_instruction_mode_says_what_to_do(
    bench: SimpleNamespace,
    run_main: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("VALGRIND", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no valgrind on it
    with pytest.raises(bench.cg.ValgrindMissing, match="apt-get install valgrind"):
        bench.cg.find_valgrind()
    assert run_main(["--instructions"], [passing_section(bench)]) == 1
    err = capsys.readouterr().err
    assert "valgrind is not found on PATH" in err
    assert "apt-get install valgrind" in err
    monkeypatch.setenv("VALGRIND", str(tmp_path / "valgrind"))  # named, but not there
    assert run_main(["--quick", "--instructions"], [passing_section(bench)]) == 1
    assert "is not an executable file" in capsys.readouterr().err
    # A full run counts too, so it needs valgrind; a quick run (CI's timings) does not.
    assert run_main([], [passing_section(bench)]) == 1
    assert run_main(["--quick"], [passing_section(bench)]) == 0


def test_instruction_flags_that_exclude_each_other_are_bad_arguments(
    bench: SimpleNamespace, run_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--instructions", "--no-instructions"]
    assert run_main(argv, [passing_section(bench)]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert run_main(["--instructions", "--calls", "0"], [passing_section(bench)]) == 2


@pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed (.ci/run installs it)")
def test_real_callgrind_counts_are_exact_and_repeat(tmp_path: Path) -> None:
    """The markers under the real callgrind: a costlier call counts more instructions, and a
    second run gives the same figures to the instruction. No libc call moves a count: a loop of
    ``os.getppid()`` and ``os.getpgrp()`` (once the markers) counts like any other."""
    script = tmp_path / "count.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from pathlib import Path\n"
        "from benchmarks._callgrind import Dumps, per_call\n"
        "import os\n"
        "def one(): return sum((1, 2, 3))\n"
        "def two(): return sum((1, 2, 3)) + sum((1, 2, 3))\n"
        "def libc(): return os.getppid() + os.getpgrp()\n"
        "dumps = Dumps(Path(sys.argv[1]))\n"
        "for op in (one, two, libc):\n"
        "    def loop(n, op=op):\n"
        "        for _ in range(n): op()\n"
        "    loop(200)\n"
        "    first, second = dumps.measure(loop, 5000), dumps.measure(loop, 10000)\n"
        "    print(per_call(first, second, 5000))\n"
    )
    figures = []
    for run in range(2):
        out = tmp_path / f"cg.{run}"
        argv = [
            *bench_command(out),
            sys.executable,
            str(script),
            str(out),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # as the parent runs its children
        done = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=300, env=env
        )
        figures.append([float(line) for line in done.stdout.split()])
    (one, two, libc), again = figures
    assert 50 < one < two < 3 * one
    assert libc > 50
    # Usually exact to the instruction on 3.10 and 3.11, but not always: a run beside heavy load
    # once gave 1.1 % more on 3.11, and on 3.12+ two runs of this tiny loop differ by 0.6 % or
    # more (the interpreter's own bookkeeping between calls varies from run to run). The figures
    # must order the two calls alike and stay within 5 %, which still tells a count from a
    # timing (timings drift by 2x on this machine).
    assert again == pytest.approx([one, two, libc], rel=0.05)
    assert again[0] < again[1]


def bench_command(out: Path) -> list[str]:
    """callgrind as ``_callgrind.command`` runs it (the child's client requests dump)."""
    return [
        str(VALGRIND),
        "--tool=callgrind",
        "--quiet",
        f"--callgrind-out-file={out}",
        "--dump-instr=no",
        "--dump-line=no",
    ]


def test_the_callgrind_command_sets_the_markers_the_child_uses(bench: SimpleNamespace) -> None:
    argv = bench.cg.command(
        "/usr/bin/valgrind",
        out_file=Path("/t/cg"),
        record=Path("/t/r.json"),
        sections=["a", "b"],
        calls=7,
        quick=True,
    )
    assert argv[: len(bench_command(Path("/t/cg")))] == [
        "/usr/bin/valgrind",
        *bench_command(Path("/t/cg"))[1:],
    ]
    assert argv[argv.index("-m") + 1] == "benchmarks._count"
    assert argv[argv.index("--sections") + 1] == "a,b"
    assert argv[argv.index("--calls") + 1] == "7"
    assert argv[-1] == "--quick"
    assert not any(arg.startswith(("--zero-before", "--dump-before")) for arg in argv)


def test_sections_are_dealt_to_at_most_jobs_children(bench: SimpleNamespace) -> None:
    sections = [passing_section(bench, key) for key in "abcde"]
    split = bench.cg.split(sections, 2)
    assert [[s.key for s in bucket] for bucket in split] == [["a", "c", "e"], ["b", "d"]]
    assert len(bench.cg.split(sections[:1], 4)) == 1


def test_the_issue_targets_are_declared_on_the_breaker_rows(bench: SimpleNamespace) -> None:
    breaker = next(s for s in bench.sections.load_sections() if s.key == "breaker")
    labels = {g.key: {c.label for c in g.cases} for g in breaker.groups}
    for target in breaker.instruction_targets:
        assert target.case in labels[target.group], target
        assert target.reference_case in labels[target.reference_group], target
    measures = sorted((t.measure, t.max_ratio, t.strict) for t in breaker.instruction_targets)
    assert measures == [("added", 2.5, False)] * 2 + [("total", 1.0, True)] * 2


def test_worker_threads_are_timed_but_never_counted(bench: SimpleNamespace, ctx: Any) -> None:
    h = bench.h
    assert h.countable(h.SyncLoop())
    assert h.countable(h.Tasks(100))
    assert not h.countable(h.Threads(1))  # GIL hand-offs follow the clock, not the calls
    assert not h.countable(h.Threads(4))
    group = h.Group("t", "4 threads", h.Threads(4))
    group.baseline("base")(lambda ctx: h.Prepared(lambda: RESULT, returns=RESULT))
    ran: list[int] = []
    group.add("ours", h.OURS)(
        lambda ctx: ran.append(1) or h.Prepared(lambda: RESULT, returns=RESULT)
    )
    dumps = bench.cg.Dumps(Path("/nonexistent/cg"))
    assert bench.count.count_group(group, ctx, dumps, 10, lambda _: None).cases == []
    assert ran == []  # not even set up
    timed = h.run_group(group, ctx, 1)
    section = h.Section("s", "S", "d")
    section.groups.append(group)
    result = h.SectionResult(section, [timed])
    bench.cg.merge([result], {"s": {"errors": [], "groups": [{"key": "t", "cases": []}]}})
    assert [c.count_problem for c in timed.cases] == ["", ""]  # no problem: not countable
