"""An atomic batch of reads: one read transaction on a reader, never the writer.

A batch whose statements all read needs a consistent snapshot, not the writer: run it in a
read transaction on a reader, so a read-only caller's batch neither waits for nor holds up
writes (the statement policy's "nothing on the writer" for read-only callers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import apsw

from .analysis import Analysis
from .bounds import ByteBudget
from .connection import Conn
from .execution import run_statement
from .results import Params, Result
from .sqlerrors import translate

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["read_batch"]


def _run(
    conn: Conn,
    analyses: Sequence[tuple[Analysis, Params]],
    timeout: float,
    max_rows: int | None,
) -> list[Result]:
    db = conn.db
    guard = conn.guard
    # One budget for all of the batch's results: together they make one response.
    budget = ByteBudget(conn.result_bytes) if conn.result_bytes else None
    guard.start_thread(timeout)
    results: list[Result] = []
    try:
        db.execute("BEGIN")
        for index, (analysis, params) in enumerate(analyses):
            try:
                results.append(run_statement(conn, analysis, params, max_rows, budget))
            except apsw.Error as exc:
                err = translate(exc, timeout=guard.timed_out)
                err.detail = f"statement {index + 1} of the batch failed: {err.detail}"
                err.args = (err.detail,)
                raise err from exc
    finally:
        guard.stop()
        if db.in_transaction:
            db.execute("COMMIT")
    return results


async def read_batch(
    store: Engine, analyses: Sequence[tuple[Analysis, Params]], max_rows: int | None = None
) -> list[Result]:
    """Run read statements in one read transaction on a reader; each result holds at most
    ``max_rows`` rows, all of them together at most ``max_response_bytes``."""
    pool = store.pool
    conn = await pool.acquire_reader()
    try:
        results = await store.loop.run_in_executor(
            pool.reader_executor,
            _run,
            conn,
            analyses,
            store.settings.statement_timeout,
            max_rows,
        )
        if conn.db.data_version() != conn.last_dv:
            store.data_version_moved(conn)
        return results
    finally:
        pool.release_reader(conn)
