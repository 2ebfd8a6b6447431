"""Opening SQLite connections: every PRAGMA edgestore relies on is set here and only here.

A :class:`Conn` wraps one apsw connection with what the pool tracks about it: its role, when
it was last used, the data version it last saw, and the progress-handler :class:`Guard` that
bounds inline work and statement time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import apsw

from ..config import Settings
from .sqlerrors import translate

__all__ = ["Conn", "Guard", "Role", "open_connection"]

Role = Literal["writer", "reader"]

# How many VM steps between progress-handler calls when the inline budget is off; the handler
# then only checks the statement deadline.
_DEFAULT_PROGRESS_STEPS = 1000


class Guard:
    """The connection's progress handler.

    Inline mode: SQLite counts VM steps per prepared statement across runs, so the first call
    within a run may come after any number of steps; the second one comes ``budget`` steps
    later. Aborting on the second call bounds inline work to at most two budgets.
    Thread mode: abort once the statement deadline has passed.
    """

    __slots__ = ("deadline", "fired", "inline", "timed_out")

    def __init__(self) -> None:
        self.inline = False
        self.fired = False
        self.deadline = 0.0
        self.timed_out = False

    def __call__(self) -> bool:
        if self.inline:
            if self.fired:
                return True
            self.fired = True
            return False
        if self.deadline and time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        return False

    def start_inline(self) -> None:
        self.inline = True
        self.fired = False

    def start_thread(self, timeout: float) -> None:
        self.inline = False
        self.timed_out = False
        self.deadline = time.monotonic() + timeout if timeout else 0.0

    def stop(self) -> None:
        self.inline = False
        self.deadline = 0.0


class Conn:
    """One pooled connection and the pool's bookkeeping about it."""

    __slots__ = (
        "db",
        "guard",
        "hooks_applied",
        "last_dv",
        "last_used",
        "role",
        "seen_commits",
        "temp_triggers",
    )

    def __init__(self, db: apsw.Connection, role: Role, guard: Guard) -> None:
        self.db = db
        self.role: Role = role
        self.guard = guard
        self.last_used = time.monotonic()
        self.last_dv = db.data_version()
        self.seen_commits = 0
        self.hooks_applied = 0
        # Set once a CREATE TEMP TRIGGER ran here. Such a trigger lives in this connection's
        # temp schema only, so analyses made on other connections (readers) miss the tables
        # it writes: every later commit here then counts as touching every table.
        self.temp_triggers = False

    def close(self) -> None:
        self.db.close()


def _uri(path: Path) -> str:
    return "file:" + quote(str(path.resolve())) + "?mode=ro"


def open_connection(path: Path, settings: Settings, role: Role) -> Conn:
    """Open ``path`` as the writer (read-write, created in WAL mode) or as a read-only reader."""
    try:
        if role == "writer":
            db = apsw.Connection(
                str(path),
                flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE,
            )
        else:
            db = apsw.Connection(_uri(path), flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    except apsw.Error as exc:
        raise translate(exc) from exc
    try:
        db.set_busy_timeout(settings.busy_timeout_ms)
        # foreign_keys on readers too: harmless there, and PRAGMA foreign_keys reads the same
        # on every connection.
        pragmas = [f"PRAGMA cache_size = -{settings.page_cache_kib}", "PRAGMA foreign_keys = ON"]
        if role == "writer":
            # journal_mode is persistent in the file; setting it on the writer is enough, and a
            # read-only connection could not change it anyway.
            pragmas += [
                "PRAGMA journal_mode = WAL",
                f"PRAGMA synchronous = {settings.synchronous}",
            ]
        else:
            pragmas.append("PRAGMA query_only = ON")
        for pragma in pragmas:
            db.execute(pragma).fetchall()
        guard = Guard()
        steps = settings.inline_budget or _DEFAULT_PROGRESS_STEPS
        db.set_progress_handler(guard, steps)
        return Conn(db, role, guard)
    except apsw.Error as exc:
        db.close()
        raise translate(exc) from exc
