"""SQL text helpers: split a script into statements, recognise libSQL-only BEGIN forms.

Splitting relies on SQLite's own ``sqlite3_complete`` (via apsw) at each ``;`` so strings,
quoted identifiers, comments and trigger bodies are handled exactly as SQLite would.
"""

from __future__ import annotations

import re

import apsw

from ..errors import ProtocolError

__all__ = [
    "BeginKind",
    "begin_kind",
    "is_blank",
    "is_txn_control",
    "one_statement",
    "split_statements",
]

BeginKind = str  # "deferred" | "immediate" | "exclusive" | "readonly"

_BEGIN = re.compile(
    r"\s*BEGIN(?:\s+(DEFERRED|IMMEDIATE|EXCLUSIVE))?(?:\s+TRANSACTION)?(\s+READONLY)?\s*;?\s*\Z",
    re.IGNORECASE,
)


_TXN_CONTROL = re.compile(r"\s*(?:COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


def is_txn_control(sql: str) -> bool:
    """True for COMMIT / END / ROLLBACK / SAVEPOINT / RELEASE (harmless on a read-only stream,
    whose transactions can only be read transactions)."""
    return _TXN_CONTROL.match(sql) is not None


def begin_kind(sql: str) -> BeginKind | None:
    """The kind of transaction a ``BEGIN ...`` statement opens, or None if it is not one."""
    if len(sql) > 64:
        return None
    m = _BEGIN.match(sql)
    if m is None:
        return None
    if m.group(2):
        return "readonly"
    return (m.group(1) or "deferred").lower()


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds only whitespace, comments and semicolons."""
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace() or ch == ";":
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            return False
    return True


def split_statements(sql: str) -> list[str]:
    """The non-blank statements of a script, in order, each with its text as written."""
    out: list[str] = []
    start = 0
    pos = sql.find(";")
    while pos >= 0:
        piece = sql[start : pos + 1]
        if apsw.complete(piece):
            if not is_blank(piece):
                out.append(piece)
            start = pos + 1
        pos = sql.find(";", pos + 1)
    tail = sql[start:]
    if not is_blank(tail):
        out.append(tail)
    return out


def one_statement(sql: str) -> str:
    """``sql`` itself when it holds exactly one statement; SQL_NO/MANY_STATEMENT(S) otherwise."""
    if ";" not in sql:
        if is_blank(sql):
            raise ProtocolError("the SQL text holds no statement", code="SQL_NO_STATEMENT")
        return sql
    parts = split_statements(sql)
    if not parts:
        raise ProtocolError("the SQL text holds no statement", code="SQL_NO_STATEMENT")
    if len(parts) > 1:
        raise ProtocolError(
            "the SQL text holds more than one statement; use a batch or sequence",
            code="SQL_MANY_STATEMENTS",
        )
    return sql
