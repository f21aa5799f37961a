"""Checking what ``inject()`` is given: the fault (and a fresh copy of it per injection) and the
latency."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Final

from resilience_kit._validation import check_number
from resilience_kit.errors import ConfigurationError


def fault_factory(fault: object) -> Callable[[], BaseException] | None:
    """Validate ``fault`` and return what makes one fresh exception per injection.

    Each factory is tried once here, so a fault that cannot be made fails at construction
    with a ConfigurationError instead of as a TypeError in the user's call.
    """
    if fault is None:
        return None
    if isinstance(fault, type) and issubclass(fault, BaseException):
        try:
            fault()
        except Exception as error:
            raise ConfigurationError(
                f"fault must be an exception class that can be built with no arguments or an "
                f"exception instance, got {fault!r} (building it failed: {error!r}; pass an "
                f"instance instead, e.g. fault={fault.__name__}(...))",
                parameter="fault",
                value=fault,
            ) from error
        return fault
    if not isinstance(fault, BaseException):
        raise ConfigurationError(
            f"fault must be an exception class or instance, got {fault!r}",
            parameter="fault",
            value=fault,
        )
    failures = []
    for copier in (_copy_fault, _rebuild_fault):
        try:
            copier(fault)
        except Exception as error:
            failures.append(error)
        else:
            return functools.partial(copier, fault)
    raise ConfigurationError(
        f"fault must be an exception class or a copyable exception instance, got {fault!r} "
        f"(copying it failed: {failures[0]!r}, then {failures[1]!r}; pass a subclass that "
        f"can be built with no arguments instead)",
        parameter="fault",
        value=fault,
    ) from failures[-1]


def _own_notes(copied: BaseException, template: BaseException) -> BaseException:
    # A shallow copy would share the template's __notes__ list: notes that a handler adds to
    # one injected fault would appear on the template and on every later injection.
    notes = getattr(template, "__notes__", None)
    if isinstance(notes, list):
        copied.__notes__ = list(notes)  # type: ignore[attr-defined]
    return copied


def _copy_fault(template: BaseException) -> BaseException:
    """``copy.copy``: rebuilds from ``args`` through ``__init__``, then restores ``__dict__``."""
    return _own_notes(copy.copy(template), template)


# Fields that C exception types keep outside ``__dict__``; ``__init__`` fills them from the
# arguments, so a copy that skips ``__init__`` carries them over itself.
_C_FIELDS: Final = ("errno", "strerror", "filename", "filename2")


def _rebuild_fault(template: BaseException) -> BaseException:
    """A copy without ``__init__``, for a class that cannot be rebuilt from its ``args``.

    The new object has its own traceback, ``__cause__`` and ``__context__`` (all empty) and
    takes the template's ``args`` and ``__dict__``.
    """
    cls = type(template)
    copied: BaseException = cls.__new__(cls)
    copied.args = template.args
    copied.__dict__.update(template.__dict__)
    if isinstance(template, OSError):
        for name in _C_FIELDS:
            value = getattr(template, name)
            if value is not None:  # setting None would print as "None -> None" in str()
                setattr(copied, name, value)
    return _own_notes(copied, template)


def check_latency(latency: object) -> tuple[float, float]:
    if latency is None:
        return (0.0, 0.0)
    if isinstance(latency, tuple):
        bounds = None
        if len(latency) == 2:
            try:
                bounds = (
                    check_number("latency", latency[0], minimum=0),
                    check_number("latency", latency[1], minimum=0),
                )
            except ConfigurationError:
                bounds = None
        if bounds is None or bounds[0] > bounds[1]:
            raise ConfigurationError(
                f"latency must be seconds >= 0 or a (low, high) range with 0 <= low <= high, "
                f"got {latency!r}",
                parameter="latency",
                value=latency,
            )
        return bounds
    seconds = check_number("latency", latency, minimum=0)
    return (seconds, seconds)
