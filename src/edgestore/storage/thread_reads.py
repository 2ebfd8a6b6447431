"""Reads that run on a pool thread, and the helpers the store's read path hands to threads.

``Store._read`` runs a read inline on the event loop when it can (storage/store.py); what runs
on a thread instead -- a read over the inline budget, with no idle reader, or on the writer when
there are no readers -- goes through :func:`thread_read`, with the statement timeout armed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import apsw

from ..config import Settings
from .analysis import Analysis
from .connection import Conn
from .execution import run_statement
from .pool import Pool
from .results import Params, Result
from .sqlerrors import translate

__all__ = ["call_translated", "release_after", "thread_read"]

T = TypeVar("T")


def thread_read(
    conn: Conn, analysis: Analysis, params: Params, max_rows: int | None, settings: Settings
) -> Result:
    """Run a read on ``conn`` from a thread, stopped after ``statement_timeout``."""
    guard = conn.guard
    guard.start_thread(settings.statement_timeout)
    try:
        return run_statement(conn, analysis, params, max_rows)
    except apsw.Error as exc:
        raise translate(exc, timeout=guard.timed_out) from exc
    finally:
        guard.stop()


def release_after(pool: Pool, conn: Conn, done: asyncio.Future[Result]) -> None:
    """Give ``conn`` back once the thread read its caller stopped waiting for has ended."""
    if not done.cancelled():
        done.exception()  # nobody awaits it any more: the caller was cancelled
    pool.release_reader(conn)


def call_translated(fn: Callable[[apsw.Connection], T], db: apsw.Connection) -> T:
    """``fn(db)`` with SQLite's errors turned into edgestore's."""
    try:
        return fn(db)
    except apsw.Error as exc:
        raise translate(exc) from exc
