"""The statement policy: may this statement run for this caller, and on which connection?

Decided from the statement's leading keywords alone, before anything is prepared: SQLite
applies a PRAGMA while *preparing* it (``PRAGMA hard_heap_limit=1000`` changes the whole
process the moment it is compiled), so a statement this module refuses never reaches a
connection. What passes is then analysed by SQLite's authorizer (``analysis.py``), which
knows the tables it reads and writes.

PRAGMAs are an allowlist (``PRAGMA_RULES``): schema introspection reads for everyone, the two
foreign-key settings per session (as the libSQL server applies them per stream), the
database's own ``user_version`` for writers, and nothing that configures a connection or the
process. The README's "Statement policy" table is this module in prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from ..errors import DatabaseError, ReadOnlyError

__all__ = [
    "FK_DEFAULTS",
    "PRAGMA_RULES",
    "Access",
    "AlterColumn",
    "Statement",
    "classify",
    "permit",
    "pragma_function_refusal",
    "refused",
]

Access = Literal["read-only", "read-write", "admin", "library"]
"""Who is asking: an ``ro`` token, an ``rw`` token, an ``admin`` token, or application code
using the library directly (trusted like admin, but still bound by the process-wide rules)."""

Route = Literal["reader", "writer", "session", "none"]
"""Where a statement runs: any reader, the writer, the caller's session state, nowhere."""

PragmaRule = Literal["read", "read-only-value", "session", "database"]

# What each PRAGMA may do. read: introspection, any argument (a table or index name), every
# role. read-only-value: may be read, never set (connection or process configuration).
# session: foreign_keys and defer_foreign_keys, applied to the caller's session.
# database: a value stored in the database file itself, set by writers like a row.
# Any PRAGMA not listed is refused for every role.
PRAGMA_RULES: dict[str, PragmaRule] = {
    **dict.fromkeys(
        (
            "table_info",
            "table_xinfo",
            "table_list",
            "index_list",
            "index_info",
            "index_xinfo",
            "foreign_key_list",
            "foreign_key_check",
            "database_list",
            "collation_list",
            "function_list",
            "module_list",
            "pragma_list",
            "compile_options",
            "integrity_check",
            "quick_check",
            "data_version",
            "freelist_count",
            "page_count",
            "stats",
        ),
        "read",
    ),
    **dict.fromkeys(
        (
            "application_id",
            "schema_version",
            "encoding",
            "page_size",
            "auto_vacuum",
            "journal_mode",
            "journal_size_limit",
            "synchronous",
            "cache_size",
            "cache_spill",
            "busy_timeout",
            "query_only",
            "locking_mode",
            "max_page_count",
            "mmap_size",
            "temp_store",
            "recursive_triggers",
            "reverse_unordered_selects",
            "automatic_index",
            "cell_size_check",
            "secure_delete",
            "legacy_alter_table",
            "trusted_schema",
            "read_uncommitted",
            "wal_autocheckpoint",
            "hard_heap_limit",
            "soft_heap_limit",
            "threads",
            "analysis_limit",
        ),
        "read-only-value",
    ),
    "foreign_keys": "session",
    "defer_foreign_keys": "session",
    "user_version": "database",
}

FK_DEFAULTS: dict[str, bool] = {"foreign_keys": True, "defer_foreign_keys": False}
"""The server's value of the session PRAGMAs (connection.py turns foreign_keys on for every
connection); a session that sets another value has it applied to each connection it takes
and the default restored before the connection goes back to the pool."""


@dataclass(frozen=True, slots=True)
class AlterColumn:
    """libSQL's ``ALTER TABLE t ALTER COLUMN c TO <definition>``."""

    schema: str | None
    table: str
    column: str
    definition: str
    """The new column definition as written, starting with the column's name."""


@dataclass(frozen=True, slots=True)
class Statement:
    """What the leading keywords of one statement say (nothing was prepared)."""

    verb: str
    """pragma, vacuum, attach, detach, begin, savepoint, release, rollback_to, end,
    alter_column, or other (left to SQLite's authorizer)."""
    route: Route
    refusal: str | None = None
    """Refused for every role, and why."""
    pragma: str | None = None
    setting: tuple[str, bool | None] | None = None
    """A session PRAGMA: (name, value to set) or (name, None) for a read."""
    sets_value: bool = False
    """A PRAGMA with ``= value`` or ``(value)``."""
    begin: str | None = None
    """deferred, immediate, exclusive or readonly, for a BEGIN."""
    alter: AlterColumn | None = None
    multiple: bool = False
    """More than one statement in the text (only worked out for PRAGMA and ALTER COLUMN,
    which never reach SQLite's parser as a whole text)."""


# -- tokens ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*(?:\n|\Z)|/\*.*?(?:\*/|\Z))
    |(?P<word>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*)
    |(?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
    |(?P<string>'(?:[^']|'')*')
    |(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_Tok = tuple[str, str, int, int]
"""(kind, text, start, end); words are upper-cased, quoted names unquoted."""


def _tokens(sql: str, limit: int) -> list[_Tok]:
    out: list[_Tok] = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        if kind == "space":
            continue
        text = m.group()
        if kind == "word":
            text = text.upper()
        elif kind == "quoted":
            text = text[1:-1].replace(text[0] * 2, text[0]) if text[0] != "[" else text[1:-1]
            kind = "name"
        elif kind == "string":
            text = text[1:-1].replace("''", "'")
        out.append((kind, text, m.start(), m.end()))
        if len(out) >= limit:
            break
    return out


def _name(tok: _Tok | None) -> str | None:
    """An identifier (bare word or quoted name), lower-cased as SQLite compares them."""
    if tok is None or tok[0] not in ("word", "name", "string"):
        return None
    return tok[1].lower()


def _at(toks: list[_Tok], i: int) -> _Tok | None:
    return toks[i] if i < len(toks) else None


def _word(toks: list[_Tok], i: int) -> str | None:
    tok = _at(toks, i)
    return tok[1] if tok is not None and tok[0] == "word" else None


# -- classification ---------------------------------------------------------------------------


def classify(sql: str) -> Statement:
    """The statement's verb, where it runs and any refusal that holds for every role."""
    # Only short texts are remembered: a cache of long ones would hold megabytes of SQL.
    return _classify_short(sql) if len(sql) <= 1024 else _classify(sql)


@lru_cache(maxsize=4096)
def _classify_short(sql: str) -> Statement:
    return _classify(sql)


def _first_statement(sql: str) -> str:
    """``sql`` from its first token that is not a ``;``: SQLite steps over empty statements
    to the real one, and so must the policy."""
    for m in _TOKEN.finditer(sql):
        if m.lastgroup != "space" and m.group() != ";":
            return sql[m.start() :]
    return ""


def _classify(sql: str) -> Statement:
    toks = _tokens(sql, 24)
    if toks and toks[0][1] == ";" and toks[0][0] == "other":
        sql = _first_statement(sql)
        toks = _tokens(sql, 24)
    i = 0
    if _word(toks, 0) == "EXPLAIN":
        # EXPLAIN compiles the statement: an EXPLAIN PRAGMA applies the PRAGMA all the same.
        i = 3 if _word(toks, 1) == "QUERY" and _word(toks, 2) == "PLAN" else 1
    head = _word(toks, i)
    if head == "PRAGMA":
        stmt = _pragma(toks, i + 1)
        return _with_multiple(stmt, sql) if stmt.refusal is None else stmt
    if head == "VACUUM":
        if any(t[0] == "word" and t[1] == "INTO" for t in toks[i + 1 :]):
            return Statement(
                "vacuum",
                "none",
                refusal="VACUUM INTO writes a copy of the database to a file and is not "
                "allowed; an admin can write a backup into the configured backup_dir "
                "(edgestore backup, or POST /api/v1/admin/backup)",
            )
        return Statement("vacuum", "writer")
    if head in ("ATTACH", "DETACH"):
        return Statement(
            head.lower(),
            "none",
            refusal=f"{head} is not allowed: a server serves its one database",
        )
    if head == "BEGIN":
        kind = _word(toks, i + 1)
        begin = kind.lower() if kind in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE") else "deferred"
        if any(t[0] == "word" and t[1] == "READONLY" for t in toks[i + 1 : i + 4]):
            begin = "readonly"
        return Statement("begin", "writer", begin=begin)
    if head == "SAVEPOINT":
        return Statement("savepoint", "writer")
    if head == "RELEASE":
        return Statement("release", "session")
    if head in ("COMMIT", "END"):
        return Statement("end", "session")
    if head == "ROLLBACK":
        rest = [t[1] for t in toks[i + 1 : i + 3] if t[0] == "word"]
        if "TO" in rest:
            return Statement("rollback_to", "session")
        return Statement("end", "session")
    if head == "ALTER" and i == 0:
        alter = _alter_column(sql, toks)
        if alter is not None:
            return _with_multiple(Statement("alter_column", "writer", alter=alter), sql)
    return Statement("other", "reader")


def _with_multiple(stmt: Statement, sql: str) -> Statement:
    toks = _tokens(sql, 1 << 30)
    ends = [n for n, t in enumerate(toks) if t[0] == "other" and t[1] == ";"]
    if ends and any(t[1] != ";" for t in toks[ends[0] :]):
        return replace(stmt, multiple=True)
    return stmt


def _pragma(toks: list[_Tok], i: int) -> Statement:
    name = _name(_at(toks, i))
    if _at(toks, i + 1) is not None and toks[i + 1][1] == ".":
        name = _name(_at(toks, i + 2))
        i += 2
    if name is None:
        return Statement("pragma", "none", refusal="PRAGMA without a name")
    nxt = _at(toks, i + 1)
    sets = nxt is not None and nxt[1] in ("=", "(")
    value = _pragma_value(toks, i + 2) if sets else None
    rule = PRAGMA_RULES.get(name)
    if rule is None:
        return Statement(
            "pragma",
            "none",
            pragma=name,
            sets_value=sets,
            refusal=f"PRAGMA {name} is not allowed (it is not on edgestore's PRAGMA allowlist: "
            "it configures the connection or the process, or does maintenance the server "
            "owns)",
        )
    if rule == "read":
        # The argument names a table or an index: nothing is set.
        return Statement("pragma", "reader", pragma=name)
    if rule == "read-only-value":
        if sets:
            return Statement(
                "pragma",
                "none",
                pragma=name,
                sets_value=True,
                refusal=f"PRAGMA {name} is managed by edgestore (see Settings) and cannot be "
                "changed; it can be read",
            )
        return Statement("pragma", "reader", pragma=name)
    if rule == "session":
        if not sets:
            return Statement("pragma", "reader", pragma=name, setting=(name, None))
        return Statement(
            "pragma", "session", pragma=name, sets_value=True, setting=(name, _boolean(value))
        )
    return Statement("pragma", "writer" if sets else "reader", pragma=name, sets_value=sets)


def _pragma_value(toks: list[_Tok], i: int) -> str:
    tok = _at(toks, i)
    if tok is None:
        return ""
    if tok[1] in ("-", "+"):
        nxt = _at(toks, i + 1)
        return tok[1] + (nxt[1] if nxt is not None else "")
    return tok[1]


def _boolean(value: str | None) -> bool:
    # SQLite's sqlite3GetBoolean(): on/yes/true or a non-zero integer; anything else is off.
    if value is None:
        return False
    word = value.strip().lower()
    if word in ("on", "yes", "true"):
        return True
    try:
        return int(word, 0) != 0
    except ValueError:
        return False


def _alter_column(sql: str, toks: list[_Tok]) -> AlterColumn | None:
    # ALTER TABLE [schema.]table ALTER [COLUMN] column TO definition
    if _word(toks, 1) != "TABLE":
        return None
    i = 2
    schema = None
    table = _name(_at(toks, i))
    if _at(toks, i + 1) is not None and toks[i + 1][1] == ".":
        schema, table = table, _name(_at(toks, i + 2))
        i += 2
    if table is None or _word(toks, i + 1) != "ALTER":
        return None
    i += 2
    if _word(toks, i) == "COLUMN":
        i += 1
    column = _at(toks, i)
    if column is None or _word(toks, i + 1) != "TO" or _at(toks, i + 2) is None:
        return None
    start = toks[i + 2][2]
    end = sql.find(";", start)
    for tok in _tokens(sql[start:], 1 << 30):
        if tok[0] == "other" and tok[1] == ";":
            end = start + tok[2]
            break
    else:
        end = len(sql)
    definition = sql[start:end].strip()
    return AlterColumn(schema, table, _name(column) or column[1], definition)


# -- decisions --------------------------------------------------------------------------------


def pragma_function_refusal(table: str) -> str | None:
    """Why reading the table-valued function ``pragma_<name>`` is refused, if it is: SQLite
    runs the PRAGMA itself when the function is read (only introspection ones may be)."""
    name = table.lower().removeprefix("pragma_")
    if PRAGMA_RULES.get(name) is None:
        return f"PRAGMA {name} is not allowed (not on edgestore's PRAGMA allowlist)"
    return None


def refused(message: str) -> DatabaseError:
    """The error of a refused statement (SQLITE_AUTH, as SQLite's authorizer reports it)."""
    return DatabaseError(message, code="SQLITE_AUTH")


def permit(stmt: Statement, access: Access) -> None:
    """Raise unless ``access`` may run ``stmt``. Read-only callers are further held to
    statements SQLite itself reports read-only (the caller checks that with ``deps``)."""
    if stmt.refusal is not None:
        raise refused(stmt.refusal)
    if access == "read-only":
        if stmt.verb == "begin" and stmt.begin in ("immediate", "exclusive"):
            raise ReadOnlyError(
                f"BEGIN {stmt.begin.upper()} needs write access; this token is read-only",
                code="SQLITE_READONLY",
            )
        if stmt.verb == "savepoint":
            raise ReadOnlyError(
                "SAVEPOINT opens a write transaction; this token is read-only "
                "(use BEGIN for a read transaction)",
                code="SQLITE_READONLY",
            )
        if stmt.sets_value or stmt.verb in ("vacuum", "alter_column"):
            raise ReadOnlyError(
                "this token is read-only; the statement changes something",
                code="SQLITE_READONLY",
            )
    if stmt.verb == "vacuum" and access not in ("admin", "library"):
        raise refused("VACUUM needs the 'admin' role")
