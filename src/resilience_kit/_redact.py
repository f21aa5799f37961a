"""Secret redaction for text the library writes to logs.

Exception messages and SQL statements routinely carry credentials: a driver error quotes the DSN
(``postgresql://app:s3cret@db/prod``), an HTTP error quotes a header (``Authorization: Bearer
...``), a failed statement carries ``password = '...'``. Anything the library logs goes through
:func:`redact` first. The rules err on the side of hiding too much: a log line that says
``author=***`` costs nothing, a leaked token costs a rotation.

Redaction runs before truncation, so a secret cut in half by the length limit is still recognised
(a truncated ``user:pass@`` would no longer look like a URL).
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact", "redact_url", "truncate"]

MASK = "***"

# scheme://user:password@ or scheme://token@. Passwords are often pasted unencoded (SQLAlchemy
# accepts "postgresql://app:pa/ss@w0rd@db/prod"), so a password may hold '/' and '@': it runs to
# the first '@' after which the host part holds no further '@'. The cost is hiding a little too
# much in the rare URL with a port and an '@' in its path. The length bound keeps the scan linear
# on hostile text such as "a://b:" repeated.
_URL_USERINFO = re.compile(
    r"(?P<scheme>(?<![a-zA-Z0-9+.\-])[a-zA-Z][a-zA-Z0-9+.\-]*://)"
    r"(?:(?P<user>[^:/\s@]*):(?P<password>\S{0,512}?)|(?P<token>[^:/?#\s@]+))"
    r"@(?=[^\s@]*(?:[\s/?#]|$))"
)

_SECRET_KEY = re.compile(
    r"password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|authorization|auth|bearer",
    re.IGNORECASE,
)
# key=value, key: value, "key": "value", key = 'value'. A key is a whole run of word characters
# (the lookbehind stops a match starting mid-run, which keeps the scan linear); whether it names a
# secret (DB_PASSWORD, client_secret, x-api-key) is decided in Python, so a harmless key never
# swallows the text after it ("a=password=x" still finds the second pair).
_KEY_SEP = re.compile(r"(?<![\w.\-])(?P<key>[\w.\-]+)(?P<sep>[\"']?[ \t]*[=:][ \t]*)")
# The credentials after an auth scheme word ("Authorization: Bearer abc") are the secret, not
# the word; a quoted value may lack its closing quote when the text was cut short.
_VALUE = re.compile(
    r"(?P<scheme>(?:bearer|basic|digest|token)[ \t]+)?"
    r"(?P<value>\"[^\"]*\"?|'[^']*'?|[^\s,;&]+)",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>bearer|basic|digest)\s+(?P<value>[^\s,;&\"']+)", re.I)


def _mask_userinfo(match: re.Match[str]) -> str:
    # A lone userinfo without a password is often a token (https://TOKEN@host): mask it all.
    user = match.group("user")
    masked = MASK if user is None else f"{user}:{MASK}"
    return f"{match.group('scheme')}{masked}@"


def _mask_pairs(text: str) -> str:
    parts: list[str] = []
    done = 0
    position = 0
    while (pair := _KEY_SEP.search(text, position)) is not None:
        position = pair.end()
        if _SECRET_KEY.search(pair.group("key")) is None:
            continue
        value = _VALUE.match(text, position)
        if value is None:
            continue
        quote = value.group("value")[0]
        quote = quote if quote in {'"', "'"} else ""
        parts.append(text[done:position])
        parts.append(f"{value.group('scheme') or ''}{quote}{MASK}{quote}")
        done = position = value.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def redact_url(url: str) -> str:
    """Return ``url`` with the password (or a bare userinfo token) replaced by ``***``.

    Example:
        >>> redact_url("postgresql://app:s3cret@db:5432/prod")
        'postgresql://app:***@db:5432/prod'
    """
    return _URL_USERINFO.sub(_mask_userinfo, url)


def truncate(text: str, max_length: int) -> str:
    """Cut ``text`` to at most ``max_length`` characters, marking the cut with an ellipsis."""
    if len(text) <= max_length:
        return text
    if max_length <= 1:
        return text[:max_length]
    return text[: max_length - 1] + "\u2026"


def redact(text: str, *, max_length: int | None = None) -> str:
    """Mask credentials in free text, then truncate it.

    Masks URL userinfo passwords, ``key=value`` / ``key: value`` pairs whose key names a secret
    (password, passwd, pwd, secret, token, api_key, apikey, access_key, authorization, auth,
    bearer, in any case and with any decoration such as ``DB_PASSWORD``) and ``Bearer``/``Basic``
    credentials.

    Args:
        text: The text to clean.
        max_length: If given, the result is at most this many characters.

    Example:
        >>> redact("connect failed: password=hunter2 host=db")
        'connect failed: password=*** host=db'
    """
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _mask_pairs(text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {MASK}", text)
    if max_length is not None:
        text = truncate(text, max_length)
    return text
