"""Connecting to the source Postgres, with failures turned into clear :class:`SourceError`s.

psycopg is an optional extra (``edgestore[postgres]``); importing this module without it raises
:class:`~edgestore.errors.MissingExtraError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import MissingExtraError, SourceError

if TYPE_CHECKING:
    import psycopg

__all__ = ["SESSION_SETTINGS", "connect", "redact", "snapshot_transaction"]

# Every ::text conversion in typemap depends on these; set once per session.
SESSION_SETTINGS = (
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'iso_8601'",
    "SET TimeZone = 'UTC'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
    "SET client_encoding = 'UTF8'",
)


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and the manifest."""
    dsn = re.sub(r"(postgres(?:ql)?://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password=)\S+", r"\1***", dsn)


def _psycopg() -> object:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise MissingExtraError("edgestore migrate", "postgres") from exc
    return psycopg


def connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection with the session settings applied, or raise :class:`SourceError`."""
    _psycopg()
    import psycopg

    try:
        conn = psycopg.connect(dsn, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ""
        low = text.lower()
        if "password" in low or "authentication" in low or "role" in low:
            hint = " (wrong user or password?)"
        elif "does not exist" in low:
            hint = " (wrong database name?)"
        elif "connect" in low or "refused" in low or "no such file" in low or "timeout" in low:
            hint = " (is the server running and reachable?)"
        raise SourceError(f"cannot connect to {redact(dsn)}: {text}{hint}") from exc
    except psycopg.ProgrammingError as exc:
        raise SourceError(f"invalid source DSN {redact(dsn)}: {exc}") from exc
    for stmt in SESSION_SETTINGS:
        conn.execute(stmt)
    return conn


@contextmanager
def snapshot_transaction(
    conn: psycopg.Connection[tuple[object, ...]],
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """One REPEATABLE READ, READ ONLY transaction: every read inside sees the same snapshot,
    whatever the source commits meanwhile."""
    import psycopg

    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    try:
        yield conn
    except psycopg.errors.InsufficientPrivilege as exc:
        conn.rollback()
        raise SourceError(f"missing permission on the source: {exc}".strip()) from exc
    except BaseException:
        conn.rollback()
        raise
    else:
        conn.execute("COMMIT")
