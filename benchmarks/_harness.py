"""The measuring core: cases, groups, sections, timers, verification, rounds and statistics.

A *section* is one topic of the page (the circuit breaker, retry, ...). It holds *groups*; a
group is one comparison: a baseline doing the same work without a library, and the cases
measured against it. Everything in a group is interleaved: every round times each case once,
in an order that rotates from round to round, and the result of a case is its per-round ratio
(and difference) to the baseline of the same round, so a slow moment of a shared machine hits
both sides of the ratio.

A case is a function ``setup(ctx) -> Prepared``: it builds the thing to time and says what one call
must do (return a value, raise an error). Before anything is timed the harness makes that call and
checks it; a case that does not do what it claims fails the run, it is never timed.

resilience_kit itself is never allowed to go unmeasured: a section declares which of its modules
must exist (``requires``) and which are not built yet (``future``). A resilience_kit case may be
"unavailable" only while the module it needs does not exist at all and its section declares that
module future; any other unavailable resilience_kit case, and any target left unmeasured, fails
the run (``problems``).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import itertools
import math
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Active",
    "AsyncLoop",
    "Case",
    "CaseResult",
    "Context",
    "Group",
    "GroupRunner",
    "GroupResult",
    "InstructionTarget",
    "InstructionTargetResult",
    "Kind",
    "NotYetImplemented",
    "OURS",
    "Prepared",
    "RunSettings",
    "Section",
    "SectionResult",
    "SyncLoop",
    "Target",
    "TargetResult",
    "Tasks",
    "Threads",
    "Unavailable",
    "VerificationError",
    "close_group",
    "countable",
    "evaluate_instruction_targets",
    "evaluate_targets",
    "prepare_group",
    "problems",
    "rotation",
    "round_up",
    "run_group",
    "run_section",
]

Timer = Callable[[int], float]
"""Runs the operation ``n`` times and returns the seconds it took."""

_UNSET: Any = object()


OURS = "resilience-kit-py"
"""The ``library`` of the cases that measure resilience_kit itself."""


class Unavailable(Exception):
    """A case that cannot run here (a peer not installed, a server not reachable, not built yet)."""


class NotYetImplemented(Unavailable):
    """The resilience_kit module a case needs does not exist (yet).

    Accepted only for a module its section declares in ``Section.future``.
    """

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"not yet implemented ({module}.{name})")
        self.module = module


class VerificationError(AssertionError):
    """A case does not do what it claims; it is never timed."""


@dataclass
class Prepared:
    """What a case's setup hands the harness.

    Attributes:
        op: the operation timed: a zero-argument callable, or a zero-argument coroutine function
            for async kinds.
        returns: what one call must return (identity or equality).
        raises: the exception type(s) one call must raise (for raising kinds).
        check: extra verification after the verifying call (for example "the breaker is OPEN",
            "the cached function ran once"); may be a coroutine function. It raises
            ``AssertionError`` when the case is not what it claims.
        reset: runs before each verifying call (to zero a counter that ``check`` reads).
        close: releases what setup built (clients, keys, registered names); may be async.
        note: a short remark printed next to the row.
    """

    op: Callable[[], Any]
    returns: Any = _UNSET
    raises: type[BaseException] | tuple[type[BaseException], ...] | None = None
    check: Callable[[], Any] | None = None
    reset: Callable[[], Any] | None = None
    close: Callable[[], Any] | None = None
    note: str = ""


Setup = Callable[["Context"], "Prepared | Awaitable[Prepared]"]


@dataclass
class Case:
    """One row of a group."""

    label: str
    library: str
    setup: Setup
    baseline: bool = False


class Kind(Protocol):
    """How the operations of a group are driven: the timing loop and the single verifying call."""

    is_async: bool
    raises: bool
    workers: int
    sample_factor: float  # samples this many times longer than the run's sample time

    def timer(self, op: Callable[[], Any], ctx: Context) -> Timer: ...

    def describe(self) -> str: ...


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a whole multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, -(-n // multiple) * multiple)


@dataclass(frozen=True)
class SyncLoop:
    """``for _ in range(n): op()`` (inside ``try``/``except Exception`` when the op raises)."""

    raises: bool = False
    is_async: bool = False
    workers: int = 1
    sample_factor: float = 1.0

    def timer(self, op: Callable[[], Any], ctx: Context) -> Timer:
        repeat = itertools.repeat
        perf = time.perf_counter
        if self.raises:

            def run_raising(n: int) -> float:
                start = perf()
                for _ in repeat(None, n):
                    try:  # noqa: SIM105 - suppress() would add its own cost to the loop
                        op()
                    except Exception:  # noqa: S110 - the raise+catch is what is timed
                        pass
                return perf() - start

            return run_raising

        def run(n: int) -> float:
            start = perf()
            for _ in repeat(None, n):
                op()
            return perf() - start

        return run

    def describe(self) -> str:
        return "sync loop" + (", raise+catch" if self.raises else "")


@dataclass(frozen=True)
class AsyncLoop:
    """``for _ in range(n): await op()`` inside one running event loop."""

    raises: bool = False
    is_async: bool = True
    workers: int = 1
    sample_factor: float = 1.0

    def timer(self, op: Callable[[], Any], ctx: Context) -> Timer:
        repeat = itertools.repeat
        perf = time.perf_counter
        if self.raises:

            async def body_raising(n: int) -> float:
                start = perf()
                for _ in repeat(None, n):
                    try:  # noqa: SIM105 - suppress() would add its own cost to the loop
                        await op()
                    except Exception:  # noqa: S110 - the raise+catch is what is timed
                        pass
                return perf() - start

            return lambda n: ctx.run(body_raising(n))

        async def body(n: int) -> float:
            start = perf()
            for _ in repeat(None, n):
                await op()
            return perf() - start

        return lambda n: ctx.run(body(n))

    def describe(self) -> str:
        return "async loop" + (", raise+catch" if self.raises else "")


@dataclass(frozen=True)
class Threads:
    """``workers`` threads, each running ``n / workers`` calls; wall time from the first start.

    Starting and handing the GIL between many threads costs milliseconds per sample whatever
    the calls cost, so these samples are longer (``sample_factor``) to keep that small.
    """

    workers: int
    raises: bool = False
    is_async: bool = False
    sample_factor: float = 5.0

    def timer(self, op: Callable[[], Any], ctx: Context) -> Timer:
        workers = self.workers
        repeat = itertools.repeat
        perf = time.perf_counter

        def run(n: int) -> float:
            per_thread = n // workers
            barrier = threading.Barrier(workers)
            spans: list[tuple[float, float]] = []
            errors: list[BaseException] = []

            def worker() -> None:
                barrier.wait()
                start = perf()
                try:
                    for _ in repeat(None, per_thread):
                        op()
                except BaseException as exc:  # reported by the main thread below
                    errors.append(exc)
                spans.append((start, perf()))

            threads = [threading.Thread(target=worker) for _ in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
            return max(end for _, end in spans) - min(start for start, _ in spans)

        return run

    def describe(self) -> str:
        return f"{self.workers} threads"


@dataclass(frozen=True)
class Tasks:
    """``workers`` asyncio tasks in one loop, each awaiting ``n / workers`` calls.

    Creating the tasks is part of every sample; longer samples (``sample_factor``) keep it small.
    """

    workers: int
    raises: bool = False
    is_async: bool = True
    sample_factor: float = 5.0

    def timer(self, op: Callable[[], Any], ctx: Context) -> Timer:
        workers = self.workers
        repeat = itertools.repeat
        perf = time.perf_counter

        async def body(n: int) -> float:
            per_task = n // workers

            async def worker() -> None:
                for _ in repeat(None, per_task):
                    await op()

            start = perf()
            await asyncio.gather(*(worker() for _ in range(workers)))
            return perf() - start

        return lambda n: ctx.run(body(n))

    def describe(self) -> str:
        return f"{self.workers} asyncio tasks"


def countable(kind: Kind) -> bool:
    """Whether instruction counts of this kind mean anything: not for worker threads, whose GIL
    hand-offs with each other and the waiting main thread follow the wall clock (the 5 ms switch
    interval), not the calls (counted, they even come out negative)."""
    return not isinstance(kind, Threads)


@dataclass
class Group:
    """One comparison: a baseline and the cases measured against it, interleaved."""

    key: str
    title: str
    kind: Kind
    cases: list[Case] = field(default_factory=list)
    param: float | None = None
    series: str = ""
    quick_count: bool = True
    """Counted by ``--quick --instructions`` (CI's smoke count); the largest sizes of the scaling
    sections are not: under callgrind their set-up alone takes minutes, and a smaller size of
    the same group already proves the cases count."""

    def add(self, label: str, library: str, *, baseline: bool = False) -> Callable[[Setup], Setup]:
        """Decorator registering ``setup`` as a case of this group."""

        def register(setup: Setup) -> Setup:
            if baseline and any(case.baseline for case in self.cases):
                raise ValueError(f"group {self.key!r} already has a baseline")
            if any(case.label == label for case in self.cases):
                raise ValueError(f"group {self.key!r} already has a case {label!r}")
            self.cases.append(Case(label, library, setup, baseline))
            return setup

        return register

    def baseline(self, label: str) -> Callable[[Setup], Setup]:
        """Decorator registering the group's baseline."""
        return self.add(label, "baseline", baseline=True)


@dataclass(frozen=True)
class Target:
    """A speed target from an issue: the case's added ns over the baseline must stay within it."""

    group: str
    case: str
    max_added_ns: float
    title: str


@dataclass(frozen=True)
class InstructionTarget:
    """A target judged on instruction counts: one case's figure against another's.

    ``measure`` is ``"added"`` (instructions per call over each case's own baseline) or
    ``"total"`` (instructions per call, the loop included: what the caller pays). Met when
    ``figure(case) / figure(reference) <= max_ratio`` (``< max_ratio`` when ``strict``).
    """

    title: str
    group: str
    case: str
    reference_group: str
    reference_case: str
    max_ratio: float
    measure: str = "added"
    strict: bool = False

    def __post_init__(self) -> None:
        if self.measure not in {"added", "total"}:
            raise ValueError(f"measure must be 'added' or 'total', got {self.measure!r}")
        if not (self.max_ratio > 0 and math.isfinite(self.max_ratio)):
            raise ValueError(f"max_ratio must be a finite number > 0, got {self.max_ratio!r}")

    def describe(self) -> str:
        """``≤ 2.5x`` or ``< 1x`` the reference's figure."""
        return f"{'<' if self.strict else '≤'} {self.max_ratio:g}x"


@dataclass
class Section:
    """A topic of the page; registers its groups and targets. One file per section.

    ``requires`` names the resilience_kit modules the section measures that exist now: each must
    import, and every resilience_kit case must run. ``future`` names those not built yet: a case
    needing one is "unavailable: not yet implemented" while that module does not exist.
    ``context``, when set, is entered around the whole section (for example to replace
    ``time.sleep`` by a no-op); ``rounds_factor`` scales the run's rounds for this section.
    """

    key: str
    title: str
    description: str
    order: int = 100
    chart: str = "bars"  # "bars": ratio per case per group; "lines": ratio against group.param
    x_label: str = ""
    rounds_factor: float = 1.0
    context: Callable[[], AbstractContextManager[Any]] | None = None
    requires: tuple[str, ...] = ()
    future: tuple[str, ...] = ()
    groups: list[Group] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    instruction_targets: list[InstructionTarget] = field(default_factory=list)

    def __post_init__(self) -> None:
        if both := set(self.requires) & set(self.future):
            raise ValueError(f"section {self.key!r}: {sorted(both)} both required and future")

    def group(
        self,
        key: str,
        title: str,
        kind: Kind,
        *,
        param: float | None = None,
        series: str = "",
        quick_count: bool = True,
    ) -> Group:
        """Add and return a new group."""
        if any(group.key == key for group in self.groups):
            raise ValueError(f"section {self.key!r} already has a group {key!r}")
        group = Group(key, title, kind, param=param, series=series, quick_count=quick_count)
        self.groups.append(group)
        return group

    def target(self, group: str, case: str, max_added_ns: float, title: str) -> None:
        """Declare a speed target for one case."""
        self.targets.append(Target(group, case, max_added_ns, title))

    def instruction_target(
        self,
        title: str,
        case: tuple[str, str],
        reference: tuple[str, str],
        max_ratio: float,
        *,
        measure: str = "added",
        strict: bool = False,
    ) -> None:
        """Declare a target judged on instruction counts: ``case`` (group key, case label)
        against ``reference`` (see [InstructionTarget][])."""
        self.instruction_targets.append(
            InstructionTarget(title, *case, *reference, max_ratio, measure, strict)
        )


@dataclass(frozen=True)
class RunSettings:
    """How long and how often to measure."""

    rounds: int = 40
    sample_seconds: float = 0.02
    quick: bool = False
    quick_calls: int = 10


class Context:
    """What case setups get: the run's event loop, unique names, shared clients, settings."""

    def __init__(self, settings: RunSettings | None = None) -> None:
        self.settings = settings or RunSettings()
        self.loop = asyncio.new_event_loop()
        self._names = itertools.count(1)
        self._resources: dict[str, Any] = {}
        self._closers: list[Callable[[], Any]] = []

    @property
    def quick(self) -> bool:
        """True in ``--quick`` mode."""
        return self.settings.quick

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Run an awaitable to completion on the run's event loop."""
        return self.loop.run_until_complete(awaitable)

    def resolve(self, value: Any) -> Any:
        """Await ``value`` on the run's loop if it is awaitable, else return it."""
        if inspect.isawaitable(value):
            return self.run(value)
        return value

    def unique(self, prefix: str) -> str:
        """A name no other case of this run uses (breaker registries reject duplicates)."""
        return f"bench-{prefix}-{next(self._names)}"

    def resource(self, key: str, make: Callable[[], Any], close: Callable[[Any], Any]) -> Any:
        """A shared object made once per run (a Redis client), closed at the end of the run.

        ``make`` may raise ``Unavailable``; the failure is remembered so later cases skip fast.
        """
        if key not in self._resources:
            try:
                self._resources[key] = make()
            except Unavailable as exc:
                self._resources[key] = exc
            else:
                value = self._resources[key]
                self._closers.append(lambda: close(value))
        value = self._resources[key]
        if isinstance(value, Unavailable):
            raise Unavailable(str(value))
        return value

    def close(self) -> None:
        """Close shared resources and the event loop."""
        for closer in reversed(self._closers):
            try:
                self.resolve(closer())
            except Exception as exc:
                print(f"warning: closing a benchmark resource failed: {exc!r}")
        self._closers.clear()
        self._resources.clear()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@dataclass
class CaseResult:
    """The outcome of one case: a status, and the per-round figures when it was timed."""

    label: str
    library: str
    baseline: bool
    status: str = "ok"  # ok | unavailable | failed
    reason: str = ""
    not_built: str = ""  # the resilience_kit module that does not exist yet, if that is the reason
    note: str = ""
    calls_per_sample: int = 0
    per_call_ns: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    added_ns: list[float] = field(default_factory=list)
    instructions: float | None = None  # per call, from callgrind (``--instructions``)
    instruction_calls: int = 0  # N of the N and 2N calls counted
    count_problem: str = ""  # why counting failed for a case that was timed

    @property
    def timed(self) -> bool:
        """True when the case has figures."""
        return self.status == "ok" and bool(self.per_call_ns)

    @property
    def median_ns(self) -> float:
        """Median time of one call, in ns."""
        return statistics.median(self.per_call_ns)

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios to the baseline."""
        return statistics.median(self.ratios)

    @property
    def added(self) -> float:
        """Median of the per-round differences to the baseline, in ns per call."""
        return statistics.median(self.added_ns)

    @property
    def ratio_iqr(self) -> tuple[float, float]:
        """Interquartile range of the per-round ratios."""
        return _quartiles(self.ratios)

    @property
    def added_iqr(self) -> tuple[float, float]:
        """Interquartile range of the per-round differences, in ns."""
        return _quartiles(self.added_ns)


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (math.nan, math.nan)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


@dataclass
class GroupResult:
    """The results of one group, in the order the cases were declared."""

    group: Group
    cases: list[CaseResult]

    @property
    def baseline(self) -> CaseResult | None:
        """The baseline's result."""
        return next((case for case in self.cases if case.baseline), None)

    def added_instructions(self, case: CaseResult) -> float | None:
        """Instructions per call of ``case`` over the baseline's, when both were counted."""
        base = self.baseline
        if base is None or base.instructions is None or case.instructions is None:
            return None
        return case.instructions - base.instructions

    def instruction_ratio(self, case: CaseResult) -> float | None:
        """Instructions per call of ``case`` over the baseline's, as a ratio."""
        base = self.baseline
        if base is None or not base.instructions or case.instructions is None:
            return None
        return case.instructions / base.instructions

    def case(self, label: str) -> CaseResult | None:
        """The result of the case labelled ``label``."""
        return next((case for case in self.cases if case.label == label), None)


@dataclass
class SectionResult:
    """The results of one section."""

    section: Section
    groups: list[GroupResult]
    errors: list[str] = field(default_factory=list)  # about the section itself (``requires``)

    @property
    def failures(self) -> list[tuple[GroupResult, CaseResult]]:
        """Every case that failed (verification, setup error, error while timed, resilience_kit
        unavailable)."""
        return [(g, c) for g in self.groups for c in g.cases if c.status == "failed"]

    def group(self, key: str) -> GroupResult | None:
        """The result of the group ``key``."""
        return next((g for g in self.groups if g.group.key == key), None)


def rotation(items: Sequence[Any], round_index: int) -> list[Any]:
    """The order of round ``round_index``: ``items`` rotated left by the round index."""
    if not items:
        return []
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call_once(kind: Kind, prepared: Prepared, ctx: Context) -> tuple[Any, BaseException | None]:
    try:
        if kind.is_async:
            return ctx.run(prepared.op()), None
        return prepared.op(), None
    except Exception as exc:
        return None, exc


def verify(kind: Kind, prepared: Prepared, ctx: Context) -> None:
    """Make one call and check it does what the case claims; raise ``VerificationError`` if not."""
    if prepared.raises is None and prepared.returns is _UNSET and prepared.check is None:
        raise VerificationError("the case declares nothing to verify (returns, raises or check)")
    if kind.raises and prepared.raises is None:
        raise VerificationError("a raising group needs cases that declare what they raise")
    if not kind.raises and prepared.raises is not None:
        raise VerificationError("a raising case in a group whose loop does not catch")
    if prepared.reset is not None:
        ctx.resolve(prepared.reset())
    value, error = _call_once(kind, prepared, ctx)
    if prepared.raises is not None:
        if error is None:
            raise VerificationError(
                f"expected {_names(prepared.raises)} to be raised, got the value {value!r}"
            )
        if not isinstance(error, prepared.raises):
            raise VerificationError(
                f"expected {_names(prepared.raises)} to be raised, got {_describe(error)}"
            ) from error
    elif error is not None:
        raise VerificationError(f"the call raised {_describe(error)}") from error
    if prepared.returns is not _UNSET and not (
        value is prepared.returns or value == prepared.returns
    ):
        raise VerificationError(f"expected the call to return {prepared.returns!r}, got {value!r}")
    if prepared.check is not None:
        try:
            ctx.resolve(prepared.check())
        except VerificationError:
            raise
        except AssertionError as exc:
            raise VerificationError(str(exc) or "the case's check failed") from exc


def _names(types: type[BaseException] | tuple[type[BaseException], ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


MIN_CALIBRATION_CALLS = 10


def calibrate(timer: Timer, kind: Kind, target_seconds: float) -> int:
    """The number of calls that makes one sample take about ``target_seconds``."""
    n = kind.workers
    elapsed = timer(n)
    # Grow geometrically until a sample is long enough to estimate the per-call time, and spans
    # enough calls that one slow call (a server hiccup) cannot pass for the per-call time.
    while (elapsed < target_seconds / 5 or n < MIN_CALIBRATION_CALLS) and n < 1 << 30:
        factor = 10 if elapsed <= 0 else min(10.0, max(2.0, (target_seconds / 5) / elapsed * 1.5))
        n = round_up(int(n * factor), kind.workers)
        elapsed = timer(n)
    per_call = elapsed / n
    # A second estimate at full size; noise only ever adds time, so the smaller one is closer.
    full = round_up(int(target_seconds / per_call) if per_call > 0 else n, kind.workers)
    per_call = min(per_call, timer(full) / full)
    return round_up(int(target_seconds / per_call) if per_call > 0 else full, kind.workers)


@dataclass
class Active:
    """A case set up and verified, ready to be timed or counted."""

    case: Case
    prepared: Prepared
    result: CaseResult
    timer: Timer
    calls: int = 0


def prepare_group(group: Group, ctx: Context) -> tuple[list[CaseResult], list[Active]]:
    """Set up and verify every case of ``group`` (for timing or counting); failures are recorded
    in the results. Every case set up is in the second list, to be closed by ``close_group``."""
    results = [CaseResult(c.label, c.library, c.baseline) for c in group.cases]
    active: list[Active] = []
    for case, result in zip(group.cases, results, strict=True):
        try:
            prepared = ctx.resolve(case.setup(ctx))
        except NotYetImplemented as exc:
            result.status, result.reason, result.not_built = "unavailable", str(exc), exc.module
            continue
        except Unavailable as exc:
            result.status, result.reason = "unavailable", str(exc)
            continue
        except ImportError as exc:
            if case.library == OURS:  # a peer may be missing; the library under test may not
                result.status, result.reason = "failed", f"setup raised {_describe(exc)}"
            else:
                result.status, result.reason = "unavailable", f"cannot import: {exc}"
            continue
        except Exception as exc:
            result.status, result.reason = "failed", f"setup raised {_describe(exc)}"
            continue
        result.note = prepared.note
        entry = Active(case, prepared, result, timer=group.kind.timer(prepared.op, ctx))
        active.append(entry)
        try:
            verify(group.kind, prepared, ctx)
        except VerificationError as exc:
            result.status, result.reason = "failed", f"verification: {exc}"
    base = next((result for result in results if result.baseline), None)
    if base is None or base.status != "ok":
        # Nothing can be compared: an unreachable server makes the group unavailable, a baseline
        # that does not do its job makes it fail.
        status = "unavailable" if base is not None and base.status == "unavailable" else "failed"
        reason = f"the baseline is {base.status}: {base.reason}" if base else "no baseline"
        for result in results:
            if result.status == "ok" and not result.baseline:
                result.status, result.reason = status, reason
    return results, active


def close_group(
    group: Group, active: list[Active], ctx: Context, log: Callable[[str], None]
) -> None:
    """Release what the cases' setups built."""
    for entry in active:
        if entry.prepared.close is not None:
            try:
                ctx.resolve(entry.prepared.close())
            except Exception as exc:
                log(f"warning: closing {group.key}/{entry.case.label} failed: {exc!r}")


def run_group(
    group: Group, ctx: Context, rounds: int, log: Callable[[str], None] = lambda _: None
) -> GroupResult:
    """Set up, verify, calibrate and time every case of ``group``, interleaved; then clean up."""
    results, active = prepare_group(group, ctx)
    try:
        _time_group(
            group=group, active=active, ctx=ctx, rounds=rounds, settings=ctx.settings, log=log
        )
    finally:
        close_group(group, active, ctx, log)
    return GroupResult(group, results)


def _time_group(
    *,
    group: Group,
    active: list[Active],
    ctx: Context,
    rounds: int,
    settings: RunSettings,
    log: Callable[[str], None],
) -> None:
    baseline = next((e for e in active if e.case.baseline), None)
    if baseline is None or baseline.result.status != "ok":
        return
    timing = [e for e in active if e.result.status == "ok"]

    def fail(entry: Active, exc: BaseException, when: str) -> None:
        entry.result.status, entry.result.reason = "failed", f"{when}: {_describe(exc)}"
        entry.result.per_call_ns.clear()
        timing.remove(entry)

    for entry in list(timing):
        try:
            if settings.quick:
                entry.calls = round_up(settings.quick_calls, group.kind.workers)
            else:
                entry.calls = calibrate(
                    entry.timer, group.kind, settings.sample_seconds * group.kind.sample_factor
                )
            entry.timer(entry.calls)  # warm-up sample, discarded
        except Exception as exc:
            fail(entry, exc, "raised while calibrating")
        entry.result.calls_per_sample = entry.calls
    gc.collect()
    for round_index in range(rounds):
        for entry in rotation(list(timing), round_index):
            if entry not in timing:
                continue
            try:
                elapsed = entry.timer(entry.calls)
            except Exception as exc:
                fail(entry, exc, f"raised in round {round_index}")
                if entry is baseline:
                    break
                continue
            entry.result.per_call_ns.append(elapsed / entry.calls * 1e9)
        if baseline not in timing:
            break
    if baseline not in timing:
        for entry in list(timing):
            fail(entry, RuntimeError("the baseline failed while timed"), "no baseline")
        return
    # The case must still do what it claims after being timed (a breaker still OPEN, a hit).
    for entry in list(timing):
        try:
            verify(group.kind, entry.prepared, ctx)
        except VerificationError as exc:
            fail(entry, exc, "verification after timing")
    base = baseline.result.per_call_ns
    for entry in timing:
        samples = entry.result.per_call_ns
        entry.result.ratios = [s / b for s, b in zip(samples, base, strict=True)]
        entry.result.added_ns = [s - b for s, b in zip(samples, base, strict=True)]
    log(
        f"  {group.title}: "
        + ", ".join(f"{e.case.label} {e.result.ratio:.2f}x" for e in timing if not e.case.baseline)
    )


GroupRunner = Callable[[Group, Context, int, Callable[[str], None]], GroupResult]
"""Runs one group: ``run_group`` times it; the counting child counts its instructions."""


def run_section(
    section: Section,
    ctx: Context,
    log: Callable[[str], None] = lambda _: None,
    runner: GroupRunner | None = None,
) -> SectionResult:
    """Run every group of a section (with ``runner``, ``run_group`` by default)."""
    runner = runner or run_group
    settings = ctx.settings
    rounds = (
        settings.rounds
        if settings.quick
        else max(3, round(settings.rounds * section.rounds_factor))
    )
    log(f"{section.title} ({len(section.groups)} groups, {rounds} rounds)")
    errors = []
    for module in section.requires:
        try:
            importlib.import_module(module)
        except Exception as exc:
            errors.append(f"requires {module}, which does not import: {_describe(exc)}")
    with section.context() if section.context is not None else nullcontext():
        groups = [runner(g, ctx, rounds, log) for g in section.groups]
    for group in groups:
        for case in group.cases:
            if case.library == OURS and case.status == "unavailable":
                _refuse_unmeasured(section, case)
    return SectionResult(section, groups, errors)


def _refuse_unmeasured(section: Section, case: CaseResult) -> None:
    """Fail a resilience_kit case that did not run, unless its module is declared future."""
    if case.not_built and case.not_built in section.future:
        return
    if case.not_built:
        future = ", ".join(section.future) or "none"
        case.reason = (
            f"{case.not_built} does not exist, and section {section.key!r} does not declare it "
            f"future (its future modules: {future})"
        )
    else:
        case.reason = f"resilience_kit must be measured here, but is unavailable: {case.reason}"
    case.status = "failed"


@dataclass(frozen=True)
class TargetResult:
    """A target and what the run measured for it."""

    section: Section
    target: Target
    case: CaseResult | None

    @property
    def met(self) -> bool | None:
        """True or False when measured; None when the case did not run."""
        if self.case is None or not self.case.timed:
            return None
        return self.case.added <= self.target.max_added_ns


def problems(
    results: Iterable[SectionResult],
    targets: Iterable[TargetResult],
    instruction_targets: Iterable[InstructionTargetResult] = (),
) -> list[str]:
    """Everything that makes the run fail, one line each: a section whose required modules do not
    import, every failed case (timed or counted), every target not measured."""
    out = []
    for result in results:
        key = result.section.key
        out += [f"{key}: {error}" for error in result.errors]
        out += [f"{key}/{g.group.key}/{c.label}: {c.reason}" for g, c in result.failures]
        out += [
            f"{key}/{g.group.key}/{c.label}: instructions: {c.count_problem}"
            for g in result.groups
            for c in g.cases
            if c.count_problem
        ]
    for target in targets:
        if target.met is None:
            reason = target.case.reason if target.case is not None else "no such case"
            out.append(f"target not measured: {target.target.title} ({reason or 'not timed'})")
    for counted in instruction_targets:
        if counted.met is None:
            out.append(f"target not counted: {counted.target.title} ({counted.missing})")
    return out


def evaluate_targets(results: Iterable[SectionResult]) -> list[TargetResult]:
    """Match every declared target with the measured case."""
    out = []
    for section_result in results:
        by_group = {g.group.key: g for g in section_result.groups}
        for target in section_result.section.targets:
            group = by_group.get(target.group)
            case = None
            if group is not None:
                case = next((c for c in group.cases if c.label == target.case), None)
            out.append(TargetResult(section_result.section, target, case))
    return out


@dataclass(frozen=True)
class InstructionTargetResult:
    """An instruction target and the counted figures it compares."""

    section: Section
    target: InstructionTarget
    value: float | None  # the case's figure (instructions per call, added or total)
    reference: float | None  # the reference case's figure
    missing: str = ""  # why a figure is missing

    @property
    def ratio(self) -> float | None:
        """``value / reference``; None when either is missing or the reference is not positive."""
        if self.value is None or self.reference is None or self.reference <= 0:
            return None
        return self.value / self.reference

    @property
    def met(self) -> bool | None:
        """True or False when both figures were counted; None otherwise."""
        ratio = self.ratio
        if ratio is None:
            return None
        limit = self.target.max_ratio
        return ratio < limit if self.target.strict else ratio <= limit


def _figure(
    result: SectionResult, group_key: str, label: str, measure: str
) -> tuple[float | None, str]:
    group = result.group(group_key)
    case = group.case(label) if group is not None else None
    if group is None or case is None:
        return None, f"no case {group_key}/{label}"
    if case.instructions is None:
        why = case.count_problem or case.reason or "not counted"
        return None, f"{group_key}/{label}: {why}"
    if measure == "total":
        return case.instructions, ""
    added = group.added_instructions(case)
    if added is None:
        return None, f"{group_key}: the baseline was not counted"
    return added, ""


def evaluate_instruction_targets(
    results: Iterable[SectionResult],
) -> list[InstructionTargetResult]:
    """Every declared instruction target with the figures counted (none when nothing was)."""
    out = []
    for result in results:
        for target in result.section.instruction_targets:
            value, why = _figure(result, target.group, target.case, target.measure)
            reference, why_ref = _figure(
                result, target.reference_group, target.reference_case, target.measure
            )
            missing = "; ".join(text for text in (why, why_ref) if text)
            if not missing and reference is not None and reference <= 0:
                missing = f"the reference's figure is {reference:.0f}, not a cost to compare with"
            out.append(InstructionTargetResult(result.section, target, value, reference, missing))
    return out
