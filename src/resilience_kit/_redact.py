"""Secret redaction for text the library writes to logs.

Exception messages and SQL statements routinely carry credentials: a driver error quotes the DSN
(``postgresql://app:s3cret@db/prod``), an HTTP error quotes a URL with a signed query
(``?X-Amz-Signature=...``) or a header (``Authorization: Bearer ...``), a failed statement
carries ``password = '...'``. Anything the library logs goes through `redact()` first. The
rules err on the side of hiding too much: a log line that says ``author=***`` costs nothing, a
leaked token costs a rotation.

Every rule runs in linear time, and tolerates text cut short (a quoted value without its closing
quote, a key block without its end line), because `redact()` cuts long text to the logged
length plus `CUT_MARGIN` *before* redacting (a 2 MB HTML error page costs microseconds, not
a scan of 2 MB per log line) and truncates again after it. The margin is larger than the longest
stretch any rule looks ahead from the logged part (a URL password is at most 512 characters up to
its ``@``), so a secret that starts in the logged part is still recognised (a ``user:pass@``
whose ``@`` fell past the cut would no longer look like a URL).
"""

from __future__ import annotations

import re

__all__ = ["CUT_MARGIN", "MASK", "redact", "redact_url", "truncate"]

MASK = "***"
CUT_MARGIN = 1024

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
# Oracle's EZConnect "user/password@//host:1521/service" (or "@host:1521/service").
_SLASH_CREDENTIALS = re.compile(
    r"(?<![\w.$#/\-])(?P<user>[A-Za-z][\w.$#]*)/[^\s/@'\"]{1,128}@(?=//|[\w.\-]+:\d)"
)
# A Telegram bot token is a path segment: https://api.telegram.org/bot<id>:<token>/method.
_BOT_TOKEN = re.compile(r"(?<=/bot)\d+:[\w\-]+")
# The whole block, up to its end line or the end of the (possibly cut) text.
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)",
    re.DOTALL,
)

# A key names a secret when it contains one of these words anywhere (DB_PASSWORD, csrftoken,
# X-Amz-Signature, x-api-key) ...
_SECRET_ANYWHERE = re.compile(
    r"passw|passphrase|pwd|secret|token|credential|signature|api[_\-]?key|access[_\-]?key"
    r"|private[_\-]?key|auth|bearer|cookie|session|sessid|jwt",
    re.IGNORECASE,
)
# ... or ends with one of these short words, whole or after a separator (key, sig, pass,
# pw, x-goog-key, ftp_pass), so that "monkey" or "passage" do not.
_SECRET_SUFFIX = re.compile(r"(?:^|[_\-.])(?:key|sig|pass|pw|otp)$", re.IGNORECASE)
# Headers whose whole value is secret, separators and all ("Cookie: a=1; sessionid=...").
_WHOLE_LINE_KEYS = frozenset({"cookie", "set-cookie"})

# key=value, key: value, "key": "value", key = 'value', \"key\": \"value\" (JSON in a string).
# A key is a whole run of word characters (the lookbehind stops a match starting mid-run, which
# keeps the scan linear); whether it names a secret is decided in Python, so a harmless key
# never swallows the text after it ("a=password=x" still finds the second pair).
_KEY_SEP = re.compile(r"(?<![\w.\-])(?P<key>[\w.\-]+)(?P<sep>\\?[\"']?[ \t]*[=:][ \t]*)")
# The credentials after an auth scheme word ("Authorization: Bearer abc") are the secret, not
# the word. A quoted value honours backslash escapes ("hun\"ter2") and may lack its closing quote
# when the text was cut short. A value quoted with \" is a JSON string inside a JSON string: there
# the inner escapes are doubled (\\\" is an escaped quote). Whatever follows a value may be
# empty, so a value match never backtracks into its alternatives: the scan is linear.
_VALUE = re.compile(
    r"(?P<scheme>(?:bearer|basic|digest|token)[ \t]+)?"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"?|'(?:[^'\\]|\\.)*'?"
    r"|\\\"(?:\\\\(?:\\.|[^\\])|\\[^\"]|[^\\])*(?:\\\")?"
    r"|[^\s,;&]+)",
    re.IGNORECASE | re.DOTALL,
)
_REST_OF_LINE = re.compile(r"[^\r\n]+")
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>bearer|basic|digest)\s+(?P<value>[^\s,;&\"']+)", re.I)


def _mask_userinfo(match: re.Match[str]) -> str:
    # A lone userinfo without a password is often a token (https://TOKEN@host): mask it all.
    user = match.group("user")
    masked = MASK if user is None else f"{user}:{MASK}"
    return f"{match.group('scheme')}{masked}@"


def _names_secret(key: str) -> bool:
    return _SECRET_ANYWHERE.search(key) is not None or _SECRET_SUFFIX.search(key) is not None


def _mask_pairs(text: str) -> str:
    parts: list[str] = []
    done = 0
    position = 0
    while (pair := _KEY_SEP.search(text, position)) is not None:
        position = pair.end()
        key = pair.group("key")
        if not _names_secret(key):
            continue
        value = _VALUE.match(text, position)
        if value is None:
            continue
        opening = value.group("value")[:2]
        if opening.startswith(("'", '"')):
            quote = opening[0]
        elif opening == '\\"':
            quote = opening
        else:
            quote = ""
            if key.lower() in _WHOLE_LINE_KEYS and ":" in pair.group("sep"):
                value = _REST_OF_LINE.match(text, position) or value
        parts.append(text[done:position])
        scheme = value.groupdict().get("scheme") or ""
        parts.append(f"{scheme}{quote}{MASK}{quote}")
        done = position = value.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def redact_url(url: str) -> str:
    """Return ``url`` with the password (or a bare userinfo token) replaced by ``***``.

    Examples:
        ```python
        from resilience_kit._redact import redact_url

        assert (
            redact_url("postgresql://app:s3cret@db:5432/prod")
            == "postgresql://app:***@db:5432/prod"
        )
        ```
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

    Masks:

    - URL userinfo passwords and tokens (``postgresql://app:***@db``), Oracle
      ``user/***@//host`` connect strings and Telegram ``/bot***`` tokens;
    - ``key=value``, ``key: value``, ``"key": "value"`` pairs (quoted values with escaped
      quotes included) whose key contains password, passwd, passphrase, pwd, secret, token,
      credential, signature, api_key / apikey, access_key, private_key, auth, bearer, cookie,
      session, sessid or jwt, or is (or ends with ``_``/``-``/``.`` and) key, sig, pass, pw
      or otp, in any case: ``DB_PASSWORD``, ``X-Amz-Signature``, ``?key=``, ``sig=``;
    - the whole value of ``Cookie:`` and ``Set-Cookie:`` header lines;
    - ``Bearer`` / ``Basic`` / ``Digest`` credentials, and PEM private key blocks.

    Args:
        text: The text to clean.
        max_length: If given, the result is at most this many characters, and only the first
            ``max_length + CUT_MARGIN`` characters are examined.

    Examples:
        ```python
        from resilience_kit._redact import redact

        assert (
            redact("connect failed: password=hunter2 host=db")
            == "connect failed: password=*** host=db"
        )
        ```
    """
    if max_length is not None and len(text) > max_length + CUT_MARGIN:
        text = text[: max_length + CUT_MARGIN]
    text = _PRIVATE_KEY_BLOCK.sub(MASK, text)
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _SLASH_CREDENTIALS.sub(lambda m: f"{m.group('user')}/{MASK}@", text)
    text = _BOT_TOKEN.sub(MASK, text)
    text = _mask_pairs(text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {MASK}", text)
    if max_length is not None:
        text = truncate(text, max_length)
    return text
