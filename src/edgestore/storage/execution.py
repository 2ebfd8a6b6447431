"""Running statements on a connection: one statement, a group-commit batch, a script.

Everything here is synchronous and runs on whichever thread owns the connection at that
moment (the event loop thread for inline reads, a pool thread otherwise).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw

from ..errors import InvalidTextError, ParameterError, ResponseTooLarge
from .alter_column import apply_alter_column
from .analysis import Analysis
from .bounds import (
    ByteBudget,
    length_limit,
    restore_length,
    row_size,
    take_rows,
    too_big,
)
from .connection import Conn
from .params import raise_bind_error
from .results import Column, Params, Result, Value
from .sqlerrors import invalid_text, translate

__all__ = [
    "Outcome",
    "WriteJob",
    "has_temp_triggers",
    "pragma_data_version",
    "result_columns",
    "run_alone",
    "run_group",
    "run_statement",
]

_NO_PARAMS: tuple[Value, ...] = ()


def result_columns(cursor: apsw.Cursor, analysis: Analysis) -> tuple[Column, ...]:
    """The columns of a statement just executed on ``cursor`` (the analysis's, unless the
    schema changed under it)."""
    try:
        description = cursor.get_description()
    except apsw.ExecutionCompleteError:
        return analysis.columns
    if description == analysis.description:
        return analysis.columns
    # The schema changed under a cached analysis (SELECT * after ALTER TABLE elsewhere).
    return tuple(Column(name, decl) for name, decl in description)


def run_statement(
    conn: Conn,
    analysis: Analysis,
    params: Params,
    max_rows: int | None,
    budget: ByteBudget | None = None,
) -> Result:
    """Run one analysed statement on ``conn`` and collect its rows. Raises apsw errors, and
    ResponseTooLarge when a read's rows pass ``budget`` (by default the connection's
    ``max_response_bytes``; a batch passes one budget to all of its statements)."""
    db = conn.db
    if analysis.alter is not None:
        # libSQL's ALTER COLUMN: SQLite cannot prepare it (alter_column.py).
        return apply_alter_column(db, analysis.alter)
    limit = conn.result_bytes
    if budget is None and limit:
        budget = ByteBudget(limit)
    read = analysis.kind == "read"
    # Only reads: a write may store a value of any size; it is just not sent back whole.
    old_limit = length_limit(db, limit) if read else -1
    cursor = db.cursor()
    try:
        try:
            cursor.execute(analysis.sql, _NO_PARAMS if params is None else params)
        except apsw.BindingsError as exc:
            raise_bind_error(analysis, params, exc)
        except apsw.Error:
            raise
        except Exception as exc:  # binding raises plain Python errors (2**64, a missing name)
            raise_bind_error(analysis, params, exc)
        if analysis.creates_trigger and not conn.temp_triggers:
            # A temporary trigger's writes are invisible to analyses made on other connections.
            conn.temp_triggers = has_temp_triggers(db)
        columns = result_columns(cursor, analysis)
        if read:
            wanted = sys.maxsize if max_rows is None else max_rows + 1
            values, exhausted = take_rows(cursor, wanted, budget)
            truncated = max_rows is not None and len(values) > max_rows
            if truncated:
                del values[max_rows:]
            if not exhausted:
                cursor.close(force=True)
            return Result(columns, values, truncated=truncated)
        values, truncated = _keep_rows(cursor, max_rows, budget)
    except (ResponseTooLarge, InvalidTextError):
        # The statement stopped between rows: end it, or the savepoint cannot be released
        # ("SQL statements in progress") and a write's job cannot be rolled back.
        cursor.close(force=True)
        raise
    except apsw.TooBigError as exc:
        if old_limit >= 0:
            raise too_big(limit, exc) from exc
        raise
    finally:
        restore_length(db, old_limit)
    writes = bool(analysis.deps.writes) and not analysis.deps.schema_change
    return Result(
        columns,
        values,
        rows_affected=db.changes() if writes else 0,
        last_insert_rowid=db.last_insert_rowid() if analysis.inserts and writes else None,
        truncated=truncated,
    )


def _keep_rows(
    cursor: apsw.Cursor, max_rows: int | None, budget: ByteBudget | None
) -> tuple[list[tuple[Any, ...]], bool]:
    """A write runs to completion whatever it returns: keep its RETURNING rows up to
    ``max_rows`` and the budget, drop the rest (the result says it was truncated)."""
    values: list[tuple[Any, ...]] = []
    truncated = False
    try:
        for row in cursor:
            if truncated:
                continue
            size = row_size(row) if budget is not None else 0
            if (max_rows is not None and len(values) >= max_rows) or (
                budget is not None and size > budget.left
            ):
                truncated = True
                continue
            if budget is not None:
                budget.left -= size
            values.append(row)
    except UnicodeDecodeError as exc:
        raise invalid_text(exc) from exc
    return values, truncated


@dataclass(slots=True)
class WriteJob:
    """One caller's write request: a statement, or several for an atomic batch."""

    statements: Sequence[tuple[Analysis, Params]]
    max_rows: int | None = None
    single: bool = True
    results: list[Result] = field(default_factory=list)
    error: Exception | None = None
    """Why this job failed (an EdgestoreError, or whatever unexpected error it raised)."""


@dataclass(slots=True)
class Outcome:
    """What a group commit did: tables written, whether the schema changed, external writes."""

    written: set[str] = field(default_factory=set)
    schema_change: bool = False
    external: bool = False
    committed: bool = False
    touches_all: bool = False
    """The writer has temporary triggers: what it wrote is not known, assume everything."""


def _run_job(conn: Conn, job: WriteJob, timeout: float) -> None:
    db = conn.db
    db.execute("SAVEPOINT edgestore_job")
    conn.guard.start_thread(timeout)
    # One budget for all of a batch's results: together they make one response.
    budget = ByteBudget(conn.result_bytes) if conn.result_bytes else None
    try:
        job.results = []
        for index, (analysis, params) in enumerate(job.statements):
            try:
                job.results.append(run_statement(conn, analysis, params, job.max_rows, budget))
            except (apsw.Error, ParameterError) as exc:
                err = translate(exc, timeout=conn.guard.timed_out)
                if not job.single:
                    err.detail = f"statement {index + 1} of the batch failed: {err.detail}"
                    err.args = (err.detail,)
                raise err from exc
    except Exception as err:
        # Whatever this job raised (a parameter that cannot be bound, anything unexpected)
        # it fails alone: the jobs sharing its transaction still commit.
        conn.guard.stop()
        job.error = err
        job.results = []
        if db.in_transaction:
            db.execute("ROLLBACK TO edgestore_job; RELEASE edgestore_job")
        return
    conn.guard.stop()
    db.execute("RELEASE edgestore_job")


def has_temp_triggers(db: apsw.Connection) -> bool:
    """Whether the connection's temp schema holds a trigger (see ``Conn.temp_triggers``)."""
    row = db.execute("SELECT 1 FROM temp.sqlite_schema WHERE type = 'trigger' LIMIT 1").fetchone()
    return row is not None


def pragma_data_version(db: apsw.Connection) -> int:
    """PRAGMA data_version: changes only when *another* connection committed."""
    row = db.execute("PRAGMA data_version").fetchone()
    assert row is not None
    return int(row[0])


def run_group(conn: Conn, jobs: list[WriteJob], timeout: float) -> Outcome:
    """Group commit: every job in its own SAVEPOINT inside one IMMEDIATE transaction.

    A failing job is rolled back to its savepoint and fails alone. If a statement ends the
    whole transaction (``INSERT OR ROLLBACK``, ``RAISE(ROLLBACK)``), the others are run again
    in a fresh transaction without it. Raises only if BEGIN or COMMIT itself fails (then
    every job failed). A change of the writer's PRAGMA data_version since its last check means
    another process wrote (``Outcome.external``).
    """
    db = conn.db
    outcome = Outcome()
    pending = [j for j in jobs if j.error is None]
    while pending:
        db.execute("BEGIN IMMEDIATE")
        try:
            dv = pragma_data_version(db)
            if dv != conn.last_dv:
                outcome.external = True
            conn.last_dv = dv
            lost = False
            for job in pending:
                _run_job(conn, job, timeout)
                if not db.in_transaction:
                    lost = True  # this job rolled back the whole transaction
                    break
            if lost:
                pending = [j for j in pending if j.error is None]
                for j in pending:
                    j.results = []
                continue
            db.execute("COMMIT")
            outcome.touches_all = conn.temp_triggers
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        for job in pending:
            for analysis, _ in job.statements:
                outcome.written |= analysis.deps.writes
                outcome.schema_change |= analysis.deps.schema_change
        outcome.committed = True
        break
    return outcome


def run_alone(conn: Conn, job: WriteJob, timeout: float) -> Outcome:
    """Run a statement that cannot share a transaction (VACUUM, PRAGMA x = y) by itself."""
    analysis, params = job.statements[0]
    conn.guard.start_thread(timeout)
    try:
        job.results = [run_statement(conn, analysis, params, job.max_rows)]
    except apsw.Error as exc:
        job.error = translate(exc, timeout=conn.guard.timed_out)
    except Exception as exc:
        job.error = exc
    finally:
        conn.guard.stop()
    # Unclassified changes: treat them as touching everything.
    return Outcome(schema_change=True, committed=job.error is None)
