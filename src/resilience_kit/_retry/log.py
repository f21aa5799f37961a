"""What retries write to the log: redacted, cut, never a statement's parameters."""

from __future__ import annotations

import contextlib
import logging
import traceback
from typing import TYPE_CHECKING, Final

from resilience_kit._redact import CUT_MARGIN, redact

if TYPE_CHECKING:
    from resilience_kit._retry.policy import RetryPolicy

_LOGGER = logging.getLogger("resilience_kit.retry")
_MESSAGE_LIMIT = 200  # characters of an exception message that reach the log
# SQLAlchemy's str() of a statement error appends the statement and its bound parameters, that
# is, the call's arguments: everything from the first of these markers on is dropped.
_SQL_MARKERS: Final = ("\n[SQL: ", "\n[parameters: ")


class _Redacted:
    """An error's message as a log record's argument: redacted when the record is formatted.

    Redacting costs microseconds, several times the rest of a retry's bookkeeping, and most
    records are never formatted: a ``NullHandler``, a filter or a handler's own level drops
    them. A record formats its arguments with ``str()``, so the work moves there, done once
    however many handlers format it. Only the raw text is kept (cut to what redaction examines,
    never the error with its traceback and the call's frames), and it never leaves unredacted:
    ``repr()`` and pickling give the redacted text too.
    """

    __slots__ = ("_raw", "_text")

    def __init__(self, raw: str) -> None:
        self._raw = raw
        self._text: str | None = None

    def __str__(self) -> str:
        text = self._text
        if text is None:
            # Two threads formatting at once both compute the same text: no lock needed.
            text = self._text = redact(self._raw, max_length=_MESSAGE_LIMIT)
        return text

    def __repr__(self) -> str:
        return repr(str(self))

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return str, (str(self),)


def _error_text(error: BaseException) -> _Redacted:
    """What may be logged of an error's message: redacted, cut, never a statement's parameters."""
    try:
        orig = getattr(error, "orig", None)
        if isinstance(orig, BaseException) and hasattr(error, "statement"):
            # A SQLAlchemy DBAPIError: the driver's error says what went wrong; the wrapper's
            # message only adds the statement and the parameters.
            text = f"({type(orig).__module__}.{type(orig).__qualname__}) {orig}"
        else:
            text = str(error)
    except Exception:
        text = "<unprintable message>"
    text = text[: _MESSAGE_LIMIT + CUT_MARGIN]
    for marker in _SQL_MARKERS:
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return _Redacted(text)


def _hook_failed(policy: RetryPolicy, hook: str, error: Exception, consequence: str) -> None:
    """Log a ``retry_if`` / ``retry_after`` that raised, without a traceback.

    A hook may run while the call's error is being handled (``retry_if`` on a first attempt
    does), so its own error carries the call's error as ``__context__``: a logged traceback
    would print that one unredacted. The hook's
    error type, its redacted message and where it was raised are enough to find the bug.
    """
    with contextlib.suppress(Exception):  # a broken log handler must not break the call
        frames = traceback.StackSummary.extract(
            traceback.walk_tb(error.__traceback__), lookup_lines=False
        )
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        _LOGGER.error(
            "%s of policy %r failed with %s%s: %s; %s",
            hook,
            policy.name,
            type(error).__name__,
            where,
            _error_text(error),
            consequence,
            extra={"retry_policy": policy.name, "error_type": type(error).__name__},
        )
