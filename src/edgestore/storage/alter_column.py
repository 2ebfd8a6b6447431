"""libSQL's ``ALTER TABLE t ALTER COLUMN c TO c <definition>``, on plain SQLite.

libSQL (``alter.c``, ``sqlite3AlterAlterColumn`` and ``libsql_alter_column``) rewrites the
column's definition inside the table's CREATE TABLE text in ``sqlite_schema`` and reloads the
schema. It checks that the table is an ordinary table, that the column exists, that the new
definition keeps the column's name ("UPDATE cannot also rename column"), that PRIMARY KEY,
UNIQUE and GENERATED are unchanged, and that the schema still parses. Existing rows are neither
rewritten nor validated: a new NOT NULL or CHECK holds for rows written afterwards. Indexes,
triggers and foreign keys are left as they are (they name the column, which keeps its name).

Done here the same way: the CREATE TABLE text is edited and written back with
``writable_schema`` inside a savepoint, on the connection (the writer) that runs the statement.
"""

from __future__ import annotations

import apsw

from ..errors import DatabaseError, NoSuchTableError
from .policy import AlterColumn
from .results import Result

__all__ = ["apply_alter_column"]


def _error(message: str) -> DatabaseError:
    return DatabaseError(message, code="SQLITE_ERROR")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_spans(sql: str) -> list[tuple[int, int]]:
    """(start, end) of each column definition in a CREATE TABLE text, table constraints left
    out. Strings, quoted names, comments and nested parentheses are skipped over."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = -1
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = sql.find(close, i + 1)
            while close != "]" and j >= 0 and sql.startswith(close * 2, j):
                j = sql.find(close, j + 2)
            i = n if j < 0 else j + 1
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if ch == "(":
            depth += 1
            if depth == 1:
                start = i + 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                spans.append((start, i))
                break
        elif ch == "," and depth == 1:
            spans.append((start, i))
            start = i + 1
        i += 1
    out = []
    for a, b in spans:
        text = sql[a:b].strip()
        first = text.split(None, 1)[0].upper() if text else ""
        if first in ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"):
            break
        lead = len(sql[a:b]) - len(sql[a:b].lstrip())
        out.append((a + lead, a + lead + len(text)))
    return out


def _leading_name(text: str) -> str:
    text = text.lstrip()
    if text and text[0] in '"`[':
        close = "]" if text[0] == "[" else text[0]
        j = 1
        while True:
            j = text.find(close, j)
            if j < 0 or close == "]" or not text.startswith(close * 2, j):
                break
            j += 2
        raw = text[1:j] if j > 0 else text[1:]
        return raw if close == "]" else raw.replace(close * 2, close)
    word = ""
    for ch in text:
        if ch.isalnum() or ch in "_$" or ord(ch) > 127:
            word += ch
        else:
            break
    return word


def _shape(create_sql: str, table: str, column: str) -> tuple[int, bool, bool]:
    """(pk position, generated, unique alone) of ``column`` in a CREATE TABLE text, learned by
    creating the table in a scratch in-memory database (which also proves the text parses)."""
    scratch = apsw.Connection(":memory:")
    try:
        scratch.execute(create_sql)
        pk, hidden = 0, 0
        for row in scratch.execute(f"PRAGMA table_xinfo({_quote(table)})"):
            if str(row[1]).lower() == column.lower():
                pk, hidden = int(row[5]), int(row[6])
        unique = False
        for index in scratch.execute(f"PRAGMA index_list({_quote(table)})").fetchall():
            if index[3] != "u":
                continue
            cols = scratch.execute(f"PRAGMA index_info({_quote(str(index[1]))})").fetchall()
            if len(cols) == 1 and str(cols[0][2]).lower() == column.lower():
                unique = True
        return pk, hidden in (2, 3), unique
    finally:
        scratch.close()


def apply_alter_column(db: apsw.Connection, alter: AlterColumn) -> Result:
    """Run ``alter`` on ``db`` (the writer). Raises DatabaseError as libSQL words it."""
    schema = _quote(alter.schema or "main")
    if alter.table.lower().startswith("sqlite_"):
        raise _error(f"table {alter.table} may not be altered")
    row = db.execute(
        f"SELECT type, name, sql FROM {schema}.sqlite_schema "
        "WHERE name = ? COLLATE NOCASE AND type IN ('table', 'view')",
        (alter.table,),
    ).fetchone()
    if row is None:
        raise NoSuchTableError(f"no such table: {alter.table}", code="SQLITE_ERROR")
    kind, table, old_sql = str(row[0]), str(row[1]), str(row[2] or "")
    if kind != "table" or old_sql.upper().startswith("CREATE VIRTUAL"):
        raise _error(f"cannot alter {table}: only ordinary tables can be altered")
    spans = _column_spans(old_sql)
    found = [s for s in spans if _leading_name(old_sql[s[0] : s[1]]).lower() == alter.column]
    if not found:
        raise _error(f'no such column: "{alter.column}"')
    start, end = found[0]
    old_name = _leading_name(old_sql[start:end])
    new_name = _leading_name(alter.definition)
    if new_name.lower() != old_name.lower():
        raise _error(
            f'UPDATE cannot also rename column: "{old_name}" to "{new_name}". '
            "Use ALTER TABLE RENAME instead"
        )
    new_sql = old_sql[:start] + alter.definition + old_sql[end:]
    try:
        before = _shape(old_sql, table, old_name)
        after = _shape(new_sql, table, old_name)
    except apsw.Error as exc:
        raise _error(f"error in adding {alter.definition} to {table}: {exc}") from exc
    for what, differs in zip(("PRIMARY KEY", "GENERATED", "UNIQUE"), range(3), strict=True):
        if before[differs] != after[differs]:
            raise _error(
                f"error in adding {alter.definition} to {table}: "
                f"{what} constraint cannot be altered"
            )
    _write_schema(db, schema, table, new_sql)
    return Result()


def _write_schema(db: apsw.Connection, schema: str, table: str, new_sql: str) -> None:
    row = db.execute(f"PRAGMA {schema}.schema_version").fetchone()
    version = int(row[0]) if row is not None else 0
    db.execute("SAVEPOINT edgestore_alter_column")
    try:
        db.execute("PRAGMA writable_schema = ON")
        db.execute(
            f"UPDATE {schema}.sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?",
            (new_sql, table),
        )
        # A new schema version makes every connection (and this one) reload the schema.
        db.execute(f"PRAGMA {schema}.schema_version = {version + 1}")
        db.execute("PRAGMA writable_schema = RESET")
        # Load the new schema now: a definition that breaks an index, view or trigger fails
        # here and is rolled back, as libSQL's renameTestSchema does.
        db.execute(f"SELECT count(*) FROM {schema}.sqlite_schema").fetchall()
        db.execute(f"SELECT * FROM {schema}.{_quote(table)} LIMIT 0").fetchall()
    except BaseException:
        db.execute("PRAGMA writable_schema = RESET")
        db.execute("ROLLBACK TO edgestore_alter_column")
        db.execute("RELEASE edgestore_alter_column")
        raise
    db.execute("RELEASE edgestore_alter_column")
