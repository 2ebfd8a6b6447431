"""What a statement does, learned from SQLite itself at prepare time (never by parsing SQL).

Whether it may be prepared at all is decided first, from its leading keywords, by the
statement policy (policy.py): a PRAGMA acts while it is prepared, so one the policy refuses
never reaches the connection, and the session PRAGMAs (foreign_keys with a value) and libSQL's
ALTER COLUMN are described without preparing them. Everything else is prepared with an
authorizer that records every action and an exec tracer that aborts before the first step, so
nothing runs. The result is cached per SQL text; the cache is cleared whenever the schema may
have changed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import apsw

from ..errors import DatabaseError, SQLSyntaxError
from .policy import AlterColumn, Statement, classify, pragma_function_refusal, refused
from .results import Column, Description, TableDeps
from .sqlerrors import translate

__all__ = ["Analysis", "AnalysisCache", "analyze"]

# Tables whose "writes" are the schema itself; a schema change is reported on its own.
_INTERNAL = frozenset({"sqlite_master", "sqlite_temp_master", "sqlite_schema"})

_SCHEMA_ACTIONS = frozenset(
    {
        apsw.SQLITE_CREATE_INDEX,
        apsw.SQLITE_CREATE_TABLE,
        apsw.SQLITE_CREATE_TEMP_INDEX,
        apsw.SQLITE_CREATE_TEMP_TABLE,
        apsw.SQLITE_CREATE_TEMP_TRIGGER,
        apsw.SQLITE_CREATE_TEMP_VIEW,
        apsw.SQLITE_CREATE_TRIGGER,
        apsw.SQLITE_CREATE_VIEW,
        apsw.SQLITE_DROP_INDEX,
        apsw.SQLITE_DROP_TABLE,
        apsw.SQLITE_DROP_TEMP_INDEX,
        apsw.SQLITE_DROP_TEMP_TABLE,
        apsw.SQLITE_DROP_TEMP_TRIGGER,
        apsw.SQLITE_DROP_TEMP_VIEW,
        apsw.SQLITE_DROP_TRIGGER,
        apsw.SQLITE_DROP_VIEW,
        apsw.SQLITE_ALTER_TABLE,
        apsw.SQLITE_CREATE_VTABLE,
        apsw.SQLITE_DROP_VTABLE,
    }
)
_TRIGGER_ACTIONS = frozenset({apsw.SQLITE_CREATE_TRIGGER, apsw.SQLITE_CREATE_TEMP_TRIGGER})
_WRITE_ACTIONS = frozenset({apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE})

Kind = Literal["read", "write", "standalone", "begin", "end", "savepoint", "setting", "refused"]
"""How the store routes a statement.

read: read-only, may run on a reader. write: runs on the writer inside group commit.
standalone: changes something without naming a table (VACUUM, PRAGMA x=y): runs alone on the
writer outside any transaction. begin/end/savepoint: transaction control. setting: PRAGMA
foreign_keys / defer_foreign_keys with a value, which belongs to a session (see policy.py).
refused: never run (``Analysis.refusal`` says why).
"""

# PRAGMAs that configure the connection itself: edgestore sets them in one place
# (connection.py) and relies on them; changing them through SQL is refused. Reading is fine.
MANAGED_PRAGMAS = frozenset(
    {
        "journal_mode",
        "locking_mode",
        "synchronous",
        "foreign_keys",
        "query_only",
        "busy_timeout",
        "cache_size",
        "writable_schema",
        "wal_autocheckpoint",
        "mmap_size",
        "read_uncommitted",
        "trusted_schema",
    }
)


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the store needs to know about one SQL text."""

    sql: str
    deps: TableDeps
    kind: Kind
    columns: tuple[Column, ...]
    description: tuple[tuple[str, str | None], ...]
    params: tuple[str | None, ...]
    is_explain: bool
    stmt_readonly: bool
    """sqlite3_stmt_readonly(): what Hrana's describe reports."""
    inserts: bool
    txn_op: str | None
    """For begin/end/savepoint: BEGIN, COMMIT, ROLLBACK (savepoints: BEGIN, RELEASE, ROLLBACK)."""
    refusal: str | None = None
    """Why a ``refused`` statement is not run."""
    setting: tuple[str, bool | None] | None = None
    """A session PRAGMA (policy.Statement.setting): set (kind ``setting``) or read."""
    alter: AlterColumn | None = None
    """libSQL's ALTER TABLE ... ALTER COLUMN, which SQLite cannot prepare (alter_column.py)."""
    creates_trigger: bool = False
    """CREATE TRIGGER (temporary or not: ``CREATE TRIGGER temp.x ON main.t`` is reported as a
    main one), after which the connection checks its temp schema (see ``Conn``)."""


class _Abort(Exception):
    pass


def _prepare(db: apsw.Connection, sql: str, record: bool) -> tuple[dict[str, Any], list[Any]]:
    info: dict[str, Any] = {}
    actions: list[tuple[int, str | None, str | None]] = []

    def tracer(cursor: apsw.Cursor, first: str, bindings: Any) -> bool:
        if not cursor.has_vdbe:
            # An empty statement (a lone ';' or only a comment): nothing to run, step over it.
            info["skipped"] = info.get("skipped", 0) + len(first)
            return True
        info["first"] = first
        if record:
            info["readonly"] = cursor.is_readonly
            info["explain"] = cursor.is_explain
            info["names"] = cursor.bindings_names
            info["description"] = cursor.get_description()
        return False

    def authorizer(code: int, a: str | None, b: str | None, db_name: str | None, _t: Any) -> int:
        if code == apsw.SQLITE_PRAGMA and b is not None and (a or "").lower() in MANAGED_PRAGMAS:
            # A second line behind policy.classify, which refuses these unprepared: SQLite
            # applies such a PRAGMA while *preparing* it, so merely analysing it would
            # reconfigure the connection.
            info["refusal"] = (
                f"PRAGMA {a} is managed by edgestore (see Settings) and cannot be changed"
            )
            return apsw.SQLITE_DENY
        actions.append((code, a, b))
        return apsw.SQLITE_OK

    cursor = db.cursor()
    cursor.exec_trace = tracer
    previous = db.authorizer
    if record:
        db.authorizer = authorizer
    try:
        cursor.execute(sql, apsw._null_bindings, can_cache=False)  # type: ignore[attr-defined]
    except apsw.ExecTraceAbort:
        pass
    except UnicodeEncodeError as exc:
        raise SQLSyntaxError(
            f"the SQL text is not valid Unicode (an unpaired surrogate at character {exc.start})",
            code="SQLITE_ERROR",
        ) from None
    except apsw.Error as exc:
        if "refusal" in info:
            raise DatabaseError(info["refusal"], code="SQLITE_AUTH") from exc
        raise translate(exc) from exc
    finally:
        if record:
            db.authorizer = previous
        cursor.exec_trace = None
        cursor.close()
    return info, actions


def _param_names(sql: str, names: tuple[str | None, ...]) -> tuple[str | None, ...]:
    # apsw reports names without their prefix; Hrana wants them with it. The prefix is the
    # one that appears before the name in the statement text (':' when several do).
    out: list[str | None] = []
    for name in names:
        if name is None:
            out.append(None)
            continue
        for prefix in (":", "@", "$"):
            if prefix + name in sql:
                out.append(prefix + name)
                break
        else:
            out.append(":" + name)
    return tuple(out)


def description_of(analysis: Analysis) -> Description:
    """The Hrana ``describe`` view of an analysis (shared by Store and Session)."""
    return Description(
        columns=analysis.columns,
        params=analysis.params,
        is_readonly=analysis.stmt_readonly,
        is_explain=analysis.is_explain,
    )


def analyze(db: apsw.Connection, sql: str) -> Analysis:
    """Prepare ``sql`` on ``db`` without running it and classify it.

    Raises SQLSyntaxError for an empty text or for more than one statement, and the policy's
    SQLITE_AUTH error for a statement refused to every caller (before preparing anything).
    """
    stmt = classify(sql)
    if stmt.refusal is not None:
        raise refused(stmt.refusal)
    if stmt.multiple:
        raise _many()
    if stmt.alter is not None or (stmt.setting is not None and stmt.setting[1] is not None):
        return _unprepared(sql, stmt)
    # Preparing uses the connection's cached schema, which SQLite only re-checks when a
    # statement runs (or a name is missing): a trigger created since would go unseen.
    # Running a trivial statement reloads a stale schema first.
    try:
        db.execute("SELECT 1 FROM sqlite_schema LIMIT 0").fetchall()
    except apsw.Error as exc:
        raise translate(exc) from exc
    info, actions = _prepare(db, sql, True)
    first = info.get("first")
    if first is None:
        raise SQLSyntaxError("no SQL statement given", code="SQLITE_ERROR")
    rest = sql[info.get("skipped", 0) + len(first) :]
    if rest.strip():
        if classify(rest).verb != "other":
            # Never prepared: it could be a PRAGMA, which acts while being prepared.
            raise _many()
        try:
            more, _ = _prepare(db, rest, False)
        except SQLSyntaxError:
            more = {"first": rest}
        if "first" in more:
            raise _many()
    reads: set[str] = set()
    writes: set[str] = set()
    schema_change = False
    inserts = False
    creates_trigger = False
    txn_kind: Kind | None = None
    txn_op: str | None = None
    refusal: str | None = None
    for code, a, _b in actions:
        if code == apsw.SQLITE_READ and a:
            reads.add(a)
            if a.lower().startswith("pragma_"):
                refusal = pragma_function_refusal(a) or refusal
        elif code in _WRITE_ACTIONS and a:
            if a not in _INTERNAL:
                writes.add(a)
            if code == apsw.SQLITE_INSERT:
                inserts = True
        elif code in _SCHEMA_ACTIONS:
            schema_change = True
            creates_trigger |= code in _TRIGGER_ACTIONS
        elif code == apsw.SQLITE_TRANSACTION:
            txn_op = a
            txn_kind = "begin" if a == "BEGIN" else "end"
        elif code == apsw.SQLITE_SAVEPOINT:
            txn_op = a
            txn_kind = "savepoint"
        elif code in (apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH):
            refusal = "ATTACH and DETACH are not allowed"
    reads -= _INTERNAL
    readonly = bool(info["readonly"]) and txn_kind is None and refusal is None
    kind: Kind
    if refusal is not None:
        kind = "refused"
    elif txn_kind is not None:
        kind = txn_kind
    elif readonly and not actions and not info["explain"]:
        # Nothing to authorize: a DROP ... IF EXISTS of something this connection does not
        # have. The writer may have it (a temporary object lives only where it was created),
        # so run it there.
        kind = "standalone"
    elif readonly:
        kind = "read"
    elif writes or schema_change:
        kind = "write"
    else:
        kind = "standalone"
    description = tuple(info["description"])
    return Analysis(
        sql=sql,
        deps=TableDeps(
            reads=frozenset(reads),
            writes=frozenset(writes),
            readonly=readonly,
            schema_change=schema_change,
        ),
        kind=kind,
        columns=tuple(Column(name, decl) for name, decl in description),
        description=description,
        params=_param_names(first, tuple(info["names"])),
        is_explain=bool(info["explain"]),
        stmt_readonly=bool(info["readonly"]),
        inserts=inserts,
        txn_op=txn_op,
        refusal=refusal,
        setting=stmt.setting,
        creates_trigger=creates_trigger,
    )


def _many() -> SQLSyntaxError:
    return SQLSyntaxError(
        "only one SQL statement is allowed here (use batch() for several)", code="SQLITE_ERROR"
    )


def _unprepared(sql: str, stmt: Statement) -> Analysis:
    """The analysis of a statement that must not be prepared here: a session PRAGMA with a
    value (it would change the analysing connection) or libSQL's ALTER COLUMN (SQLite's
    parser does not know it)."""
    alter = stmt.alter is not None
    return Analysis(
        sql=sql,
        deps=TableDeps(reads=frozenset(), writes=frozenset(), readonly=False, schema_change=alter),
        kind="write" if alter else "setting",
        columns=(),
        description=(),
        params=(),
        is_explain=False,
        stmt_readonly=False,
        inserts=False,
        txn_op=None,
        setting=stmt.setting,
        alter=stmt.alter,
    )


class AnalysisCache:
    """Analyses by SQL text; the oldest entry is dropped when full."""

    def __init__(self, maxsize: int = 2048) -> None:
        self._data: OrderedDict[str, Analysis] = OrderedDict()
        self._maxsize = maxsize
        self.generation = 0

    def get(self, sql: str) -> Analysis | None:
        return self._data.get(sql)

    def put(self, analysis: Analysis, generation: int) -> None:
        # An analysis made before a schema change (generation moved on) is not kept.
        if generation != self.generation:
            return
        self._data[analysis.sql] = analysis
        if len(self._data) > self._maxsize:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()
        self.generation += 1
