"""Property tests for the construction-time checks every primitive relies on."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from resilience_kit._validation import check_int, check_number
from resilience_kit.errors import ConfigurationError


@given(value=st.integers(), minimum=st.integers(-5, 5))
def test_check_int_accepts_exactly_the_range(value: int, minimum: int) -> None:
    try:
        assert check_int("n", value, minimum=minimum) == value
        accepted = True
    except ConfigurationError as error:
        accepted = False
        assert str(error) == f"n must be an int >= {minimum}, got {value!r}"
        assert error.parameter == "n"
        assert error.value == value
    assert accepted == (value >= minimum)


@given(
    value=st.floats(allow_nan=True, allow_infinity=True),
    low=st.floats(-10, 10),
    width=st.floats(0, 10),
    min_inclusive=st.booleans(),
)
def test_check_number_accepts_exactly_the_range(
    value: float, low: float, width: float, min_inclusive: bool
) -> None:
    high = low + width
    expected = (
        math.isfinite(value) and (value >= low if min_inclusive else value > low) and value <= high
    )
    try:
        check_number("x", value, minimum=low, maximum=high, min_inclusive=min_inclusive)
        accepted = True
    except ConfigurationError as error:
        accepted = False
        assert str(error).startswith("x must be a finite number")
        assert repr(value) in str(error)
    assert accepted == expected
