"""Postgres -> snapshot directory.

Everything is read inside one REPEATABLE READ, READ ONLY transaction, so the catalog, every
table and the sequence positions come from one consistent view of the source while it keeps
taking writes. Each table streams through ``COPY (SELECT <typemap expressions>) TO STDOUT``
in binary (psycopg's C loaders build the Python values), in bounded batches: memory does not
depend on table size.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from .._version import __version__
from ..errors import MigrationError, SnapshotError, SourceError
from .catalog import read_catalog
from .normalise import fix_nan
from .plan import Plan, TablePlan, build_plan
from .progress import Progress
from .snapshot import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ChunkInfo,
    ChunkWriter,
    Manifest,
    TableData,
    write_manifest,
)
from .source import connect, redact, snapshot_transaction

__all__ = ["export_snapshot", "read_plan"]

DEFAULT_CHUNK_ROWS = 250_000
_encode = msgspec.msgpack.Encoder().encode
# a MessagePack float64 (0xcb) that is NaN/+-Infinity (exponent all ones) or -0.0
_FLOAT_SUSPECT = re.compile(rb"\xcb(?:[\x7f\xff][\xf0-\xff]|\x80\x00\x00\x00\x00\x00\x00\x00)")
BATCH_BYTES = 512 * 1024  # target encoded size of one batch (bounds memory per batch)


def read_plan(
    dsn: str,
    *,
    schema: str = "public",
    tables: list[str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Plan:
    """Connect, read the catalog and build the plan (nothing is moved)."""
    conn = connect(dsn)
    try:
        with snapshot_transaction(conn):
            return _plan(conn, dsn, schema, tables, overrides)
    finally:
        conn.close()


def _plan(
    conn: Any,
    dsn: str,
    schema: str,
    tables: list[str] | None,
    overrides: Mapping[str, str] | None,
) -> Plan:
    catalog, others = read_catalog(conn, schema, tables)
    version = conn.execute("SHOW server_version").fetchone()[0]
    return build_plan(
        catalog,
        others,
        source=redact(dsn),
        schema=schema,
        server_version=f"PostgreSQL {version}",
        overrides=overrides,
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name)[:40]


def _prepare_dir(out: Path, replace: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not replace:
            raise MigrationError(f"{out} exists and is not empty (use --replace to overwrite it)")
        # the manifest goes first: from here on the directory no longer looks complete
        (out / MANIFEST).unlink(missing_ok=True)
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _sequence_next(conn: Any, seq: str) -> int:
    last, called = conn.execute(f"SELECT last_value, is_called FROM {seq}").fetchone()
    return int(last) + 1 if called else int(last)


def export_snapshot(
    dsn: str,
    out: str | os.PathLike[str],
    *,
    schema: str = "public",
    tables: list[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    replace: bool = False,
    progress: Progress | None = None,
    compression_level: int = 3,
) -> Manifest:
    """Export ``schema`` (or ``tables``) of the source into the snapshot directory ``out``."""
    if chunk_rows < 1:
        raise MigrationError("chunk_rows must be at least 1")
    progress = progress or Progress()
    directory = Path(out)
    conn = connect(dsn)
    try:
        with snapshot_transaction(conn):
            progress.phase("plan", redact(dsn))
            plan = _plan(conn, dsn, schema, tables, overrides)
            _prepare_dir(directory, replace)
            progress.phase("export", str(directory))
            data: list[TableData] = []
            for n, table in enumerate(plan.tables):
                if table.sequence is not None:
                    table.sequence.next_value = _sequence_next(conn, table.sequence.sequence)
                data.append(
                    _export_table(
                        conn,
                        table,
                        directory,
                        f"{n:04d}_{_safe(table.name)}",
                        chunk_rows,
                        progress,
                        compression_level,
                    )
                )
    finally:
        conn.close()
    manifest = Manifest(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        edgestore_version=__version__,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        plan=plan,
        data=data,
    )
    write_manifest(directory, manifest)
    progress.close()
    return manifest


def _export_table(
    conn: Any,
    table: TablePlan,
    directory: Path,
    stem: str,
    chunk_rows: int,
    progress: Progress,
    level: int,
) -> TableData:
    import psycopg

    float_idx = [i for i, c in enumerate(table.columns) if c.float_column]
    wires = [c.wire for c in table.columns]
    chunks: list[ChunkInfo] = []
    writer: ChunkWriter | None = None
    batch_rows = 1000
    count = 0
    progress.start(table.name, table.estimated_rows or None)

    gc_was_enabled = gc.isenabled()
    gc.disable()  # rows are acyclic; generational GC passes over millions of tuples cost ~2x
    try:
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY ({table.select_sql()}) TO STDOUT (FORMAT BINARY)") as copy,
        ):
            copy.set_types(wires)
            rows = copy.rows()
            while True:
                room = chunk_rows - (writer.rows if writer else 0)
                batch = list(itertools.islice(rows, min(batch_rows, room)))
                if not batch:
                    break
                payload = _encode(batch)
                # NaN and -0.0 are rare: look for their float64 bytes in the encoded batch and
                # only then walk the rows (a false hit just costs the walk)
                if float_idx and _FLOAT_SUSPECT.search(payload):
                    payload = _encode(fix_nan(batch, float_idx))
                if writer is None:
                    writer = ChunkWriter(directory / f"{stem}_{len(chunks):06d}.zst", level)
                writer.write_batch(payload, len(batch))
                count += len(batch)
                progress.advance(len(batch))
                # size the next batch so that it encodes to about BATCH_BYTES
                per_row = max(1, len(payload) // len(batch))
                batch_rows = max(1, min(5_000, BATCH_BYTES // per_row))
                if writer.rows >= chunk_rows:
                    chunks.append(writer.close())
                    writer = None
    except (UnicodeDecodeError, psycopg.errors.CharacterNotInRepertoire) as exc:
        raise SourceError(
            f"table {table.name}: a text value is not valid UTF-8 ({exc}); refusing to alter "
            "it. Fix the data, or move the column as bytes (type override 'blob')"
        ) from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SourceError(f"missing permission reading {table.source}: {exc}") from exc
    except psycopg.Error as exc:
        raise SourceError(f"exporting {table.source} failed: {exc}") from exc
    except OSError as exc:
        raise SnapshotError(f"writing the snapshot failed for table {table.name}: {exc}") from exc
    finally:
        if gc_was_enabled:
            gc.enable()
    if writer is not None:
        chunks.append(writer.close())
    progress.done()
    return TableData(table.name, count, chunks)
