"""Schema files: ``NNNN_name.sql`` applied in order, each exactly once.

Applied files are recorded in ``_edgestore_schema`` with their SHA-256; a file that changed
after it was applied is an error naming it (edit by adding a new file, never in place).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import apsw

from ..errors import SchemaError
from .sqlerrors import code_names

__all__ = ["DEFAULT_SCHEMAS_DIR", "SCHEMA_TABLE", "apply_schema_dir", "schema_files"]

DEFAULT_SCHEMAS_DIR = Path("schemas")
SCHEMA_TABLE = "_edgestore_schema"
_NAME = re.compile(r"^\d{4}_[A-Za-z0-9_.-]+\.sql$")


def schema_files(directory: Path) -> list[Path]:
    """The schema files of ``directory`` in the order they apply."""
    return sorted(p for p in directory.iterdir() if p.is_file() and _NAME.match(p.name))


def apply_schema_dir(db: apsw.Connection, directory: Path) -> list[str]:
    """Apply the files of ``directory`` not applied yet, each in its own transaction.

    Runs on the writer (held exclusively). Returns the names applied, in order.
    """
    if not directory.is_dir():
        raise SchemaError(f"schema directory {str(directory)!r} does not exist")
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
        " name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)"
    ).fetchall()
    applied: list[str] = []
    for path in schema_files(directory):
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        try:
            # Checked inside the write transaction: several processes starting at once
            # (server workers) apply each file exactly once between them.
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                f"SELECT sha256 FROM {SCHEMA_TABLE} WHERE name = ?", (path.name,)
            ).fetchone()
            if row is not None:
                db.execute("COMMIT")
                previous = str(row[0])
                if previous != digest:
                    raise SchemaError(
                        f"{path.name}: changed after it was applied (sha256 {previous[:12]}... "
                        f"is recorded, the file now has {digest[:12]}...); add a new schema "
                        "file instead",
                        code="SQLITE_ERROR",
                    )
                continue
            db.execute(text).fetchall()
            db.execute(
                f"INSERT INTO {SCHEMA_TABLE}(name, sha256, applied_at) VALUES (?, ?, ?)",
                (path.name, digest, datetime.now(UTC).isoformat(timespec="seconds")),
            )
            db.execute("COMMIT")
        except apsw.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            code, base = code_names(exc)
            raise SchemaError(f"{path.name}: {exc}", code=code, base_code=base) from exc
        applied.append(path.name)
    return applied
