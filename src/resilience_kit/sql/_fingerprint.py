"""Statement fingerprints: one normalised text for every statement that differs only in values.

``SELECT * FROM users WHERE id = 42`` and ``select *  from USERS where id=%(id_1)s`` are one
statement run twice, and must share one row of statistics. The fingerprint is the statement's
token stream with

- every literal (quoted string, number, ``TRUE``/``FALSE``) and every bound parameter (``?``,
  ``%s``, ``%(name)s``, ``:name``, ``$1``) replaced by ``?``, a minus sign in front of a number
  included;
- a parenthesised list of nothing but placeholders after ``IN`` or ``VALUES`` (or nested in
  one) collapsed to ``(...)``, the rows of a multi-row ``VALUES`` to one, and a bracketed list
  (``ARRAY[1, 2]``, a subscript) to ``[...]``; a function's arguments stay as they are;
- comments dropped, whitespace reduced to single spaces between tokens, keywords and unquoted
  identifiers lower-cased. Quoted identifiers (``"User"``, `` `user` ``, ``[user]``) are names,
  not values: they are kept as written.

The scanner is one regular expression in linear time; it accepts any text (an unterminated
quote runs to the end), so no input can make it raise.
"""

from __future__ import annotations

import re
from collections import OrderedDict

__all__ = ["FINGERPRINTS", "FingerprintCache", "fingerprint", "has_literals"]

PLACEHOLDER = "?"
COLLAPSED = "(...)"

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>[Ee]'(?:[^'\\]|''|\\.)*(?:'|\Z)|(?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*(?:'|\Z))
  | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:(?(tag)\$(?P=tag)\$|\$\$)|\Z))
  | (?P<qname>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\W\d][^\],\s]*\])
  | (?P<param>\?|%s|%\([^)]*\)s|\$\d+|(?<!:):[A-Za-z_]\w*)
  | (?P<number>0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d]\w*(?:\$\w*)*)
  | (?P<op>::|<>|!=|<=|>=|\|\||->>|->|\#>>|\#>|@>|<@|&&|[^\s\w])
    """,
    re.VERBOSE | re.DOTALL,
)

_BOOLEANS = frozenset({"true", "false"})
# After these a minus sign is unary: "x = -1", "IN (-1, 2)", "VALUES (-1)", "LIMIT -1".
_BEFORE_UNARY = frozenset(
    {"(", ",", "=", "<", ">", "<=", ">=", "<>", "!=", "+", "-", "*", "/", "%", "[", "::"}
)
_UNARY_KEYWORDS = frozenset(
    {"select", "where", "and", "or", "not", "values", "in", "then", "else", "when", "by", "limit",
     "offset", "between", "set", "return", "returning", "is", "like", "case"}
)  # fmt: skip
_VALUE_TOKENS = frozenset({PLACEHOLDER, COLLAPSED, "[...]"})
# Keywords followed by a space before "(": anything else before "(" is a function name.
_SPACED_KEYWORDS = frozenset(
    {"in", "values", "as", "on", "from", "join", "where", "and", "or", "not", "exists", "using",
     "over", "filter", "select", "into", "table", "any", "all", "some", "when", "then", "else",
     "set", "with", "union", "returning", "between", "is", "by", "like", "lateral"}
)  # fmt: skip
_OPENERS = {")": "(", "]": "["}
# A parenthesised list after these is a list of values (an IN list, a VALUES row, a nested
# row); after a name it is a call's arguments, which stay as they are.
_LIST_CONTEXT = frozenset({"in", "values", "(", ","})
_NO_SPACE_BEFORE = frozenset({",", ")", "]", ".", "::"})
_NO_SPACE_AFTER = frozenset({"(", "[", ".", "::"})


def _tokens(sql: str) -> list[str]:
    out: list[str] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind in ("space", "comment"):
            continue
        text = match.group()
        if kind in ("string", "dollar", "param", "number"):
            if out and out[-1] == "-" and (len(out) == 1 or _is_unary_context(out[-2])):
                out.pop()
            out.append(PLACEHOLDER)
        elif kind == "word":
            lowered = text.lower()
            out.append(PLACEHOLDER if lowered in _BOOLEANS else lowered)
        else:
            out.append(text)
    return out


def _is_unary_context(previous: str) -> bool:
    return previous in _BEFORE_UNARY or previous in _UNARY_KEYWORDS


def _collapse(tokens: list[str]) -> list[str]:
    """Fold placeholder-only lists to ``(...)`` and repeated ``, (...)`` rows to one."""
    out: list[str] = []
    for item in tokens:
        out.append(item)
        if item in (")", "]"):
            opener = _OPENERS[item]
            # Walk back over "? , ? , ?" to the opener; anything else leaves the list alone.
            index = len(out) - 2
            expect_placeholder = True
            while index >= 0:
                earlier = out[index]
                if expect_placeholder and earlier in _VALUE_TOKENS:
                    expect_placeholder = False
                elif not expect_placeholder and earlier == ",":
                    expect_placeholder = True
                else:
                    break
                index -= 1
            if (
                index >= 0
                and out[index] == opener
                and not expect_placeholder
                and (opener == "[" or index == 0 or out[index - 1] in _LIST_CONTEXT)
            ):
                del out[index:]
                if opener == "[":
                    out.append("[...]")
                    continue
                # A further row of a multi-row VALUES: "(...) , (...)" keeps one.
                if len(out) >= 2 and out[-1] == "," and out[-2] == COLLAPSED:
                    out.pop()
                    continue
                out.append(COLLAPSED)
    return out


def _join(tokens: list[str]) -> str:
    parts: list[str] = []
    previous = ""
    for token in tokens:
        call = (
            token in ("(", "[", "[...]")
            and previous[:1].isidentifier()
            and previous not in _SPACED_KEYWORDS
        )
        if parts and previous not in _NO_SPACE_AFTER and token not in _NO_SPACE_BEFORE and not call:
            parts.append(" ")
        parts.append(token)
        previous = token
    return "".join(parts)


def has_literals(sql: str) -> bool:
    """True when ``sql`` holds a value written into its text (a quoted string, a number)."""
    return any(match.lastgroup in ("string", "dollar", "number") for match in _TOKEN.finditer(sql))


def fingerprint(sql: str) -> str:
    """The normalised form of ``sql`` that every statement differing only in values shares.

    Example:
        ```python
        from resilience_kit.sql import fingerprint

        sql = "SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x' -- hi"
        assert fingerprint(sql) == "select * from t where id in (...) and name = ?"
        ```
    """
    return _join(_collapse(_tokens(sql)))


class FingerprintCache:
    """Statement text to fingerprint, bounded, so a repeated statement is never re-parsed.

    SQLAlchemy hands the same ``str`` object to the driver for every execution of a cached
    compiled statement, so a lookup hashes nothing new (``str`` caches its hash) and compares by
    identity. When full, the oldest entry makes room: statements with inlined literals (each
    text distinct) keep it at its bound instead of growing it.
    """

    __slots__ = ("_entries", "_max_entries")

    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._max_entries = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sql: str) -> str:
        """The fingerprint of ``sql``, computed at most once while it stays cached."""
        found = self._entries.get(sql)
        if found is None:
            found = fingerprint(sql)
            entries = self._entries
            while len(entries) >= self._max_entries:
                try:
                    entries.popitem(last=False)
                except KeyError:  # emptied by another thread meanwhile
                    break
            entries[sql] = found
        return found


FINGERPRINTS = FingerprintCache()
"""The process-wide cache every monitor shares (fingerprints do not depend on the engine)."""
