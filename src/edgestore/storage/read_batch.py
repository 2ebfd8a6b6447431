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
from .connection import Conn
from .execution import run_statement
from .results import Params, Result
from .sqlerrors import translate

if TYPE_CHECKING:
    from .store import Store

__all__ = ["read_batch"]


def _run(conn: Conn, analyses: Sequence[tuple[Analysis, Params]], timeout: float) -> list[Result]:
    db = conn.db
    guard = conn.guard
    guard.start_thread(timeout)
    results: list[Result] = []
    try:
        db.execute("BEGIN")
        for index, (analysis, params) in enumerate(analyses):
            try:
                results.append(run_statement(conn, analysis, params, None))
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


async def read_batch(store: Store, analyses: Sequence[tuple[Analysis, Params]]) -> list[Result]:
    """Run read statements in one read transaction on a reader."""
    pool = store.pool
    conn = await pool.acquire_reader()
    try:
        results = await store.loop.run_in_executor(
            pool.reader_executor, _run, conn, analyses, store.settings.statement_timeout
        )
        if conn.db.data_version() != conn.last_dv:
            store._data_version_moved(conn)
        return results
    finally:
        pool.release_reader(conn)
