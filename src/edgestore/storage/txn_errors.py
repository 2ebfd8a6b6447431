"""Small helpers of store.py and transaction.py: the errors of misplaced statements, libSQL's
BEGIN form."""

from __future__ import annotations

from ..errors import DatabaseError, EdgestoreError, InvalidRequest, ReadOnlyError
from .analysis import Analysis

__all__ = ["no_transaction", "not_a_read", "not_here", "readonly_begin", "refused"]


def refused(analysis: Analysis, allowed: tuple[str, ...]) -> Exception:
    if analysis.kind == "refused":
        return DatabaseError(analysis.refusal or "not allowed", code="SQLITE_AUTH")
    if analysis.kind in ("write", "standalone", "setting"):
        return ReadOnlyError("query() runs read-only statements", code="SQLITE_READONLY")
    return InvalidRequest("BEGIN, COMMIT and ROLLBACK are managed by the transaction itself")


def readonly_begin(sql: str) -> bool:
    # SQLite parses libSQL's "BEGIN TRANSACTION READONLY" as a BEGIN with a transaction name;
    # the authorizer cannot tell it apart, so look at the words of this one statement.
    words = sql.replace(";", " ").upper().split()
    return words == ["BEGIN", "TRANSACTION", "READONLY"]


def no_transaction(analysis: Analysis) -> DatabaseError:
    # The messages SQLite itself gives for these statements in autocommit mode.
    if analysis.kind == "savepoint":
        return DatabaseError("no such savepoint", code="SQLITE_ERROR")
    if analysis.txn_op == "ROLLBACK":
        return DatabaseError("cannot rollback - no transaction is active", code="SQLITE_ERROR")
    return DatabaseError("cannot commit - no transaction is active", code="SQLITE_ERROR")


def not_a_read(analysis: Analysis) -> EdgestoreError:
    """Why ``query()`` does not run this statement."""
    if analysis.kind in ("begin", "end", "savepoint", "refused"):
        return not_here(analysis)
    return ReadOnlyError(
        "a query runs read-only statements only; send writes with execute",
        code="SQLITE_READONLY",
    )


def not_here(analysis: Analysis) -> EdgestoreError:
    """Why this statement needs a transaction or a session (or is refused)."""
    if analysis.kind == "refused":
        return DatabaseError(analysis.refusal or "not allowed", code="SQLITE_AUTH")
    return InvalidRequest(
        "BEGIN, COMMIT, ROLLBACK and SAVEPOINT cannot be sent on their own here (each "
        "statement commits by itself); to run statements atomically send them as one batch, "
        "or use a transaction"
    )
