"""A readiness probe that queues behind nobody.

``Store.query("SELECT 1")`` needs a pooled reader; a caller holding both (two cursors, two
read transactions) made every probe wait ``pool_timeout`` and fail, so an orchestrator would
restart a server that was fine. The probe reads the schema page on an idle reader if there is
one (inline, it takes microseconds), else on a short-lived read-only connection of its own,
and answers within ``timeout`` whatever happens.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import apsw

from ..config import Settings
from ..errors import PoolTimeout
from .connection import open_connection
from .sqlerrors import translate

if TYPE_CHECKING:
    from .store import Store

__all__ = ["PROBE_SECONDS", "probe"]

_PROBE_SQL = "SELECT count(*) FROM (SELECT 1 FROM sqlite_schema LIMIT 1)"
"""Reads page 1 of the file (so the database is really reachable), returns one row."""


def _probe_fresh(path: Path, settings: Settings) -> None:
    conn = open_connection(path, settings, "reader")
    try:
        conn.db.execute(_PROBE_SQL).fetchall()
    except apsw.Error as exc:
        raise translate(exc) from exc
    finally:
        conn.close()


PROBE_SECONDS = 1.0
"""The probe answers within this, whatever callers hold (then PoolTimeout: 503)."""


async def probe(store: Store) -> None:
    """Raise if the database cannot be read now; answers within PROBE_SECONDS."""
    store.check_open()
    pool = store.pool
    conn = pool.idle_reader()
    if conn is not None:
        db = conn.db
        db.set_busy_timeout(0)  # on the loop: never sleep on a lock, fall back to a thread
        try:
            db.execute(_PROBE_SQL).fetchall()
            return
        except apsw.BusyError:
            pass
        except apsw.Error as exc:
            raise translate(exc) from exc
        finally:
            db.set_busy_timeout(store.settings.busy_timeout_ms)
            pool.release_reader(conn)
    try:
        await asyncio.wait_for(
            asyncio.to_thread(_probe_fresh, store.path, store.settings), PROBE_SECONDS
        )
    except TimeoutError:
        raise PoolTimeout(f"the database did not answer a read within {PROBE_SECONDS:g}s") from None
