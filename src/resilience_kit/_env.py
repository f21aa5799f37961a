"""Parsers for settings read from environment variables.

Every error names the variable and the raw text, so an operator reading a crash at start-up
knows which line of the deployment to fix: ``REDIS_RETRY_ATTEMPTS must be an int >= 1, got
'three'``. An empty (or all-blank) variable counts as unset, because deployment templates often
render a missing value as an empty string.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Mapping

from resilience_kit.errors import ConfigurationError

__all__ = [
    "env_value",
    "parse_choice",
    "parse_float",
    "parse_int",
    "parse_log_level",
    "parse_object",
    "parse_optional_float",
]

_NONE_WORDS = frozenset({"none", "null"})


def _fail(variable: str, raw: str, allowed: str) -> ConfigurationError:
    return ConfigurationError(
        f"{variable} must be {allowed}, got {raw!r}", parameter=variable, value=raw
    )


def env_value(environ: Mapping[str, str], variable: str) -> str | None:
    """The stripped value of ``variable``, or None when it is unset or blank."""
    raw = environ.get(variable)
    if raw is None or not raw.strip():
        return None
    return raw.strip()


def parse_int(variable: str, raw: str, *, minimum: int) -> int:
    """Parse a base-10 integer >= ``minimum``."""
    try:
        value = int(raw, 10)
    except ValueError:
        raise _fail(variable, raw, f"an int >= {minimum}") from None
    if value < minimum:
        raise _fail(variable, raw, f"an int >= {minimum}")
    return value


def parse_float(variable: str, raw: str, *, minimum: float, strict: bool = False) -> float:
    """Parse a finite number >= ``minimum`` (> ``minimum`` when ``strict``)."""
    allowed = f"a finite number {'>' if strict else '>='} {minimum:g}"
    try:
        value = float(raw)
    except ValueError:
        raise _fail(variable, raw, allowed) from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise _fail(variable, raw, allowed)
    return value


def parse_optional_float(
    variable: str, raw: str, *, minimum: float, strict: bool = False
) -> float | None:
    """Like `parse_float()`, but ``none``/``null`` (any case) give None."""
    if raw.lower() in _NONE_WORDS:
        return None
    try:
        return parse_float(variable, raw, minimum=minimum, strict=strict)
    except ConfigurationError:
        allowed = f"a finite number {'>' if strict else '>='} {minimum:g} or 'none'"
        raise _fail(variable, raw, allowed) from None


def parse_choice(variable: str, raw: str, choices: tuple[str, ...]) -> str:
    """Parse one of ``choices`` (case-insensitive; returned as spelled in ``choices``)."""
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise _fail(variable, raw, "one of " + ", ".join(repr(c) for c in choices))


def parse_log_level(variable: str, raw: str) -> int:
    """Parse a logging level: a name such as ``INFO`` (any case) or a number >= 0."""
    if raw.isascii() and raw.isdigit():
        return int(raw)
    level = logging.getLevelName(raw.upper())
    if isinstance(level, int):
        return level
    raise _fail(variable, raw, "a logging level name (DEBUG, INFO, WARNING, ...) or an int >= 0")


def parse_object(variable: str, raw: str) -> object:
    """Import ``package.module.name`` or ``package.module:name`` and return the object."""
    module_name, sep, attribute = raw.partition(":")
    if not sep:
        module_name, _, attribute = raw.rpartition(".")
    if not module_name or not attribute:
        raise _fail(variable, raw, "an import path such as 'package.module.Name'")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise _fail(
            variable, raw, f"an importable 'package.module.Name' ({type(error).__name__})"
        ) from None
    return target
