"""Statement fingerprints: one normalised text for every statement that differs only in values.

``SELECT * FROM users WHERE id = 42`` and ``select *  from USERS where id=%(id_1)s`` are one
statement run twice, and must share one row of statistics. The fingerprint is the statement's
token stream with

- every literal (quoted string, number, ``TRUE``/``FALSE``) and every bound parameter (``?``,
  ``%s``, ``%(name)s``, ``:name``, ``$1``) replaced by ``?``, a minus sign in front of a number
  included; a whole number that is an item of an ``ORDER BY`` or ``GROUP BY`` list is a column
  position, not a value, and stays (``ORDER BY 1`` and ``ORDER BY 2`` sort differently);
- a parenthesised list of nothing but placeholders after ``IN`` or ``VALUES`` (or nested in
  one) collapsed to ``(...)``, the rows of a multi-row ``VALUES`` to one, and a bracketed list
  (``ARRAY[1, 2]``, a subscript) to ``[...]``; a function's arguments stay as they are;
- comments dropped, whitespace reduced to single spaces between tokens, keywords and unquoted
  identifiers lower-cased. Quoted identifiers (``"User"``, `` `user` ``, ``[user]``) are names,
  not values: they are kept as written.

Two lexical dialects: the standard one (PostgreSQL, SQLite, and every other database) where a
backslash is a plain character in ``'...'`` and block comments nest as PostgreSQL nests them
(an inner ``/*`` left open is plain text, as SQLite reads it); and MySQL/MariaDB's, where a
backslash escapes the next character in a string, ``"..."`` is a string, ``#`` starts a
comment and block comments do not nest. The scanner is one regular expression in linear
time (plus a linear walk over nested comments); it accepts any text (an unterminated quote
runs to the end), so no input can make it raise.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator

__all__ = [
    "FINGERPRINTS",
    "FingerprintCache",
    "fingerprint",
    "fingerprints_for",
    "has_literals",
    "is_mysql",
]

PLACEHOLDER = "?"
COLLAPSED = "(...)"

_STANDARD_TOKENS = r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>[Ee]'(?:[^'\\]|''|\\.)*(?:'|\Z)|(?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*(?:'|\Z))
  | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:(?(tag)\$(?P=tag)\$|\$\$)|\Z))
  | (?P<qname>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\W\d][^\],\s]*\])
"""
# MySQL: backslash escapes in both quotes ("..." is a string unless ANSI_QUOTES is set: reading
# it as a value can only merge rows, never leak a value), "#" comments, no dollar quotes.
_MYSQL_TOKENS = r"""
    (?P<space>\s+)
  | (?P<comment>(?:--|\#)[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>(?:[BbXxNn]|_\w+)?'(?:[^'\\]|''|\\.)*(?:'|\Z)|"(?:[^"\\]|""|\\.)*(?:"|\Z))
  | (?P<qname>`(?:[^`]|``)*(?:`|\Z))
"""
_COMMON_TOKENS = r"""
  | (?P<param>\?|%s|%\([^)]*\)s|\$\d+|(?<!:):[A-Za-z_]\w*)
  | (?P<number>0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d]\w*(?:\$\w*)*)
  | (?P<op>::|<>|!=|<=|>=|\|\||->>|->|\#>>|\#>|@>|<@|&&|[^\s\w])
"""
_TOKEN = re.compile(_STANDARD_TOKENS + _COMMON_TOKENS, re.VERBOSE | re.DOTALL)
_MYSQL_TOKEN = re.compile(_MYSQL_TOKENS + _COMMON_TOKENS, re.VERBOSE | re.DOTALL)
_COMMENT_MARK = re.compile(r"/\*|\*/")
_MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})

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
# Keywords that end an ORDER BY / GROUP BY list (so "LIMIT 5, 10" holds values again).
_END_OF_BY_LIST = frozenset(
    {"limit", "offset", "fetch", "having", "window", "for", "union", "intersect", "except",
     "returning", "rows", "range", "groups", "select", "from", "where", "into", "values", "set",
     "on", "using", "with", "lock"}
)  # fmt: skip


def is_mysql(dialect: str | None) -> bool:
    """True for the dialect names (SQLAlchemy's ``engine.dialect.name``) with MySQL's lexis."""
    return dialect in _MYSQL_DIALECTS


def _scan(sql: str, mysql: bool) -> Iterator[tuple[str | None, str]]:
    """``(kind, text)`` for every token of ``sql``, block comments nested where they nest."""
    if mysql:
        for match in _MYSQL_TOKEN.finditer(sql):
            yield match.lastgroup, match.group()
        return
    if "/*" not in sql:
        for match in _TOKEN.finditer(sql):
            yield match.lastgroup, match.group()
        return
    # Every character starts some token (space, digit, word character, or "op"), so matching
    # at each end in turn covers the text exactly as finditer would.
    position, length, match_at = 0, len(sql), _TOKEN.match
    while position < length:
        token = match_at(sql, position)
        if token is None:  # pragma: no cover - every character starts a token
            return
        kind, end = token.lastgroup, token.end()
        if kind == "comment" and sql.startswith("/*", position):
            end = _nested_comment_end(sql, position, end)
        yield kind, sql[position:end]
        position = end


def _nested_comment_end(sql: str, start: int, flat_end: int) -> int:
    """Where the block comment at ``start`` ends when comments nest (PostgreSQL, the standard);
    ``flat_end`` (its first ``*/``) if nesting would leave it open to the end of the text, as
    in SQLite or MySQL, where ``/* a /* b */`` is a whole comment."""
    depth = 0
    for mark in _COMMENT_MARK.finditer(sql, start):
        depth += 1 if mark.group() == "/*" else -1
        if depth == 0:
            return mark.end()
    return flat_end


def _tokens(sql: str, mysql: bool = False) -> list[str]:
    out: list[str] = []
    depth = 0
    by_depth: int | None = None  # the parenthesis depth of the ORDER BY / GROUP BY list we are in
    for kind, text in _scan(sql, mysql):
        if kind in ("space", "comment"):
            continue
        if kind == "number" and depth == by_depth and text.isdigit() and out[-1] in ("by", ","):
            out.append(text)  # a column position: structure, not a value
        elif kind in ("string", "dollar", "param", "number"):
            if out and out[-1] == "-" and (len(out) == 1 or _is_unary_context(out[-2])):
                out.pop()
            out.append(PLACEHOLDER)
        elif kind == "word":
            lowered = text.lower()
            if lowered == "by" and out and out[-1] in ("order", "group"):
                by_depth = depth
            elif depth == by_depth and lowered in _END_OF_BY_LIST:
                by_depth = None
            out.append(PLACEHOLDER if lowered in _BOOLEANS else lowered)
        else:
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
                if by_depth is not None and depth < by_depth:
                    by_depth = None
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


def has_literals(sql: str, dialect: str | None = None) -> bool:
    """True when ``sql`` holds a value written into its text (a quoted string, a number)."""
    return any(kind in ("string", "dollar", "number") for kind, _ in _scan(sql, is_mysql(dialect)))


def fingerprint(sql: str, *, dialect: str | None = None) -> str:
    """The normalised form of ``sql`` that every statement differing only in values shares.

    Args:
        sql: The statement's text, as sent to the driver.
        dialect: SQLAlchemy's dialect name (``engine.dialect.name``). ``"mysql"`` and
            ``"mariadb"`` read strings and comments by MySQL's rules (backslash escapes,
            ``"..."`` strings, ``#`` comments, no nested comments); anything else, or None,
            by the standard's and PostgreSQL's.

    Example:
        ```python
        from resilience_kit.sql import fingerprint

        sql = "SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x' -- hi"
        assert fingerprint(sql) == "select * from t where id in (...) and name = ?"
        sql = 'SELECT a FROM t WHERE b = "bob" ORDER BY 1'  # "bob" is a string in MySQL
        assert (
            fingerprint(sql, dialect="mysql")
            == "select a from t where b = ? order by 1"
        )
        ```
    """
    return _join(_collapse(_tokens(sql, is_mysql(dialect))))


class FingerprintCache:
    """Statement text to fingerprint, bounded, so a repeated statement is never re-parsed.

    SQLAlchemy hands the same ``str`` object to the driver for every execution of a cached
    compiled statement, so a lookup hashes nothing new (``str`` caches its hash) and compares by
    identity. When full, the oldest entry makes room: statements with inlined literals (each
    text distinct) keep it at its bound instead of growing it.
    """

    __slots__ = ("_entries", "_max_entries", "dialect")

    def __init__(self, max_entries: int = 4096, *, dialect: str | None = None) -> None:
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._max_entries = max_entries
        self.dialect = dialect

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sql: str) -> str:
        """The fingerprint of ``sql``, computed at most once while it stays cached."""
        found = self._entries.get(sql)
        if found is None:
            found = fingerprint(sql, dialect=self.dialect)
            entries = self._entries
            while len(entries) >= self._max_entries:
                try:
                    entries.popitem(last=False)
                except KeyError:  # emptied by another thread meanwhile
                    break
            entries[sql] = found
        return found


FINGERPRINTS = FingerprintCache()
"""The process-wide cache every monitor of a standard-SQL engine shares."""
_MYSQL_FINGERPRINTS = FingerprintCache(dialect="mysql")


def fingerprints_for(dialect: str | None) -> FingerprintCache:
    """The process-wide cache for an engine of this dialect (MySQL's lexis or the standard's)."""
    return _MYSQL_FINGERPRINTS if is_mysql(dialect) else FINGERPRINTS
