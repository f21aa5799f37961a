"""Moving a breaker's state onto another clock changes nothing it will decide.

Two machines get the same events at the same moments; one of them is moved, at some step, onto
a clock that reads ``shift`` seconds more, and from then on gets its times on that clock. Every
decision (admission, state, failures in the window, seconds left) must stay the same. Shifts are
whole buckets (the rate window is 20 s of 1 s buckets), the only case where the window's edge is
exact rather than exact to within a bucket.
"""

from __future__ import annotations

from hypothesis import given, note
from hypothesis import strategies as st

from resilience_kit.breaker._machine import REJECT, Machine, MachineSettings

SETTINGS = [
    MachineSettings(failure_threshold=3, recovery_timeout=5.0, max_recovery_timeout=20.0),
    MachineSettings(failure_rate=0.5, window=20.0, minimum_calls=3, recovery_timeout=5.0),
]

events = st.lists(
    # Mostly failures, so that many runs are OPEN when the clock changes.
    st.tuples(st.integers(0, 40).map(lambda quarters: quarters / 4), st.integers(0, 3).map(bool)),
    min_size=2,
    max_size=60,
)


@given(
    settings=st.sampled_from(SETTINGS),
    start=st.integers(0, 10_000),
    shift=st.integers(-5_000, 5_000),
    steps=events,
    data=st.data(),
)
def test_a_rebased_machine_decides_as_before(
    settings: MachineSettings,
    start: int,
    shift: int,
    steps: list[tuple[float, bool]],
    data: st.DataObject,
) -> None:
    switch = data.draw(st.integers(1, len(steps) - 1), label="switch")
    kept, moved = Machine(settings), Machine(settings)
    now = float(start)
    offset = 0.0
    for step, (pause, fails) in enumerate(steps):
        if step == switch:
            note(f"rebased in {kept.state}")
            moved.rebase(now, now + shift)
            offset = float(shift)
        now += pause
        tickets = kept.admit(now), moved.admit(now + offset)
        # Tickets are each machine's own period: both admit, or both reject.
        assert (tickets[0] is REJECT) == (tickets[1] is REJECT)
        if tickets[0] is not REJECT:
            if fails:
                kept.failure(now, tickets[0])
                moved.failure(now + offset, tickets[1])
            else:
                kept.success(now, tickets[0])
                moved.success(now + offset, tickets[1])
        assert kept.state is moved.state
        assert kept.failure_count(now) == moved.failure_count(now + offset)
        assert kept.retry_after(now) == moved.retry_after(now + offset)
