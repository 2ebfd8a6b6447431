"""Postgres -> snapshot directory.

Everything is read inside one REPEATABLE READ, READ ONLY transaction, so the catalog, every
table and the sequence positions come from one consistent view of the source while it keeps
taking writes. Each table's ``SELECT <typemap expressions>`` streams with binary results in
libpq's chunked-rows mode (psycopg's C loaders build the Python values a chunk at a time), in
bounded batches: memory does not depend on table size. ``sink`` lets ``run`` load SQLite in
the same pass.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import itertools
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import msgspec

from .._version import __version__
from ..errors import MigrationError, SnapshotError, SourceError
from .catalog import CatalogTable, read_catalog
from .normalise import fix_nan
from .objects import plan_objects, read_objects
from .partitions import suggest_check
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
from .typemap import quote_ident as q
from .views import hash_rows

__all__ = ["ExportSink", "export_snapshot", "read_plan"]


class ExportSink(Protocol):
    """Receives the rows as they are exported (``run`` loads SQLite in the same pass)."""

    def begin(self, plan: Plan) -> None: ...
    def table(self, table: TablePlan) -> None: ...
    def rows(self, rows: list[Any]) -> None: ...
    def chunk_done(self, index: int, chunk: ChunkInfo) -> None: ...
    def finish(self, manifest: Manifest) -> None: ...
    def abort(self) -> None: ...


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
    partition_checks: bool = False,
) -> Plan:
    """Connect, read the catalog and build the plan (nothing is moved). ``partition_checks``
    adds the CHECK that contiguous range partition bounds imply."""
    conn = connect(dsn)
    try:
        with snapshot_transaction(conn):
            return plan_in_snapshot(conn, dsn, schema, tables, overrides, partition_checks)
    finally:
        conn.close()


def plan_in_snapshot(
    conn: Any,
    dsn: str,
    schema: str,
    tables: list[str] | None,
    overrides: Mapping[str, str] | None,
    partition_checks: bool = False,
) -> Plan:
    catalog, others = read_catalog(conn, schema, tables)
    version = conn.execute("SHOW server_version").fetchone()[0]
    plan = build_plan(
        catalog,
        others,
        source=redact(dsn),
        schema=schema,
        server_version=f"PostgreSQL {version}",
        overrides=overrides,
    )
    plan_objects(plan, read_objects(conn, schema))
    _bounds_checks(conn, catalog, plan, apply=partition_checks)
    return plan


# partition keys whose stored form sorts in SQLite as in Postgres: numbers, and dates and
# timestamps (ISO text); other text follows the database collation in Postgres
_ORDERED_TEXT = ("date", "timestamp")


def _bounds_checks(conn: Any, catalog: list[CatalogTable], plan: Plan, *, apply: bool) -> None:
    """The CHECK each partitioned table's contiguous range bounds imply: offered in the plan,
    added to the table with ``apply`` (``--partition-checks``)."""
    for ct, table in zip(catalog, plan.tables, strict=True):
        if not ct.partitions or not ct.partition_key:
            continue
        col = next(
            (
                c
                for c in table.columns
                if ct.partition_key in (f"RANGE ({c.name})", f"RANGE ({q(c.name)})")
            ),
            None,
        )
        if col is None or not (
            col.sqlite_type in ("INTEGER", "REAL") or col.pg_type.startswith(_ORDERED_TEXT)
        ):
            continue
        bounds = [p.bound for p in ct.partitions]
        check = suggest_check(conn, ct.partition_key, bounds, col.name, col.expr, col.pg_type)
        table.suggested_check = check
        if apply and check is not None:
            name = q(f"{table.name}_partition_bounds")
            table.create_sql = f"{table.create_sql[:-2]},\n  CONSTRAINT {name} CHECK ({check})\n)"


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


def _sequence_next(conn: Any, seq: str) -> tuple[int, int]:
    """The next value the sequence hands out, and its increment."""
    last, called = conn.execute(f"SELECT last_value, is_called FROM {seq}").fetchone()
    step = conn.execute(
        "SELECT seqincrement FROM pg_sequence WHERE seqrelid = %s::regclass", (seq,)
    ).fetchone()
    inc = int(step[0]) if step else 1
    return (int(last) + inc if called else int(last)), inc


def _record_views(conn: Any, plan: Plan) -> None:
    """Each translated view's rows in this snapshot, counted and checksummed (see views)."""
    import psycopg

    for view in plan.views:
        try:
            with conn.transaction():  # a savepoint: a failing view leaves the snapshot usable
                h = hash_rows(conn.execute(view.select_sql))
        except psycopg.Error:  # import then reports the view as unverified, not moved
            continue
        view.source_rows, view.source_checksum = h.count, h.checksum


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
    sink: ExportSink | None = None,
    partition_checks: bool = False,
) -> Manifest:
    """Export ``schema`` (or ``tables``) of the source into the snapshot directory ``out``.

    ``sink`` gets the plan, every batch of rows (in their SQLite form) and every closed chunk,
    then the manifest once it is written; on an error it is aborted."""
    if chunk_rows < 1:
        raise MigrationError("chunk_rows must be at least 1")
    progress = progress or Progress()
    directory = Path(out)
    conn = connect(dsn)
    try:
        with snapshot_transaction(conn):
            progress.phase("plan", redact(dsn))
            plan = plan_in_snapshot(conn, dsn, schema, tables, overrides, partition_checks)
            _prepare_dir(directory, replace)
            if sink is not None:
                sink.begin(plan)
            progress.phase("export", str(directory))
            data: list[TableData] = []
            _record_views(conn, plan)
            for n, table in enumerate(plan.tables):
                for seq in [table.sequence, *table.sequences]:
                    if seq is not None:
                        seq.next_value, seq.increment = _sequence_next(conn, seq.sequence)
                data.append(
                    _export_table(
                        conn,
                        table,
                        directory,
                        f"{n:04d}_{_safe(table.name)}",
                        chunk_rows,
                        progress,
                        compression_level,
                        sink,
                    )
                )
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
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
    if sink is not None:
        sink.finish(manifest)
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
    sink: ExportSink | None,
) -> TableData:
    import psycopg

    float_idx = [i for i, c in enumerate(table.columns) if c.float_column]
    chunks: list[ChunkInfo] = []
    writer: ChunkWriter | None = None
    batch_rows = 1000
    count = 0
    progress.start(table.name, table.estimated_rows or None)
    if sink is not None:
        sink.table(table)

    gc_was_enabled = gc.isenabled()
    gc.disable()  # rows are acyclic; generational GC passes over millions of tuples cost ~2x
    try:
        with _rows(conn, table) as rows:
            while True:
                room = chunk_rows - (writer.rows if writer else 0)
                batch = list(itertools.islice(rows, min(batch_rows, room)))
                if not batch:
                    break
                payload = _encode(batch)
                # NaN and -0.0 are rare: look for their float64 bytes in the encoded batch and
                # only then walk the rows (a false hit just costs the walk)
                if float_idx and _FLOAT_SUSPECT.search(payload):
                    batch = fix_nan(batch, float_idx)
                    payload = _encode(batch)
                if writer is None:
                    writer = ChunkWriter(directory / f"{stem}_{len(chunks):06d}.zst", level)
                writer.write_batch(payload, len(batch))
                if sink is not None:
                    sink.rows(batch)
                count += len(batch)
                progress.advance(len(batch))
                # size the next batch so that it encodes to about BATCH_BYTES
                per_row = max(1, len(payload) // len(batch))
                batch_rows = max(1, min(5_000, BATCH_BYTES // per_row))
                if writer.rows >= chunk_rows:
                    _close_chunk(writer, chunks, sink)
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
        _close_chunk(writer, chunks, sink)
    progress.done()
    return TableData(table.name, count, chunks)


STREAM_ROWS = 2000  # rows per libpq chunk (bounds memory; larger chunks gained nothing)


@contextlib.contextmanager
def _rows(conn: Any, table: TablePlan, *, chunked: bool | None = None) -> Iterator[Iterator[Any]]:
    """The rows of the table's export query, each value loaded as its wire type.

    The query streams in libpq's chunked-rows mode with binary results: psycopg's C loaders
    build a whole chunk of rows at once, about 1 us/row cheaper than ``COPY ... (FORMAT
    BINARY)``, whose rows each pass several Python generator layers. psycopg picks loaders by
    the result type (COPY is told the types), so every column's result type must be its wire
    type (int8/float8/text/bytea; Postgres reports a domain as its base type, and bpchar has
    text's binary form): anything else is a typemap bug, refused rather than misread.
    Chunked mode needs libpq >= 17 (``chunked=None``: whatever this psycopg has); without it
    the table is read with binary COPY.
    """
    import psycopg

    select = table.select_sql()
    if chunked is None:
        chunked = psycopg.capabilities.has_stream_chunked()
    if not chunked:
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY ({select}) TO STDOUT (FORMAT BINARY)") as copy,
        ):
            copy.set_types([c.wire for c in table.columns])
            yield copy.rows()
        return
    types = conn.adapters.types
    with conn.cursor(binary=True) as cur:
        cur.execute(f"SELECT * FROM ({select}) AS q LIMIT 0")
        got = [d.type_code for d in cur.description or ()]
        bpchar, text = types["bpchar"].oid, types["text"].oid
        for col, oid in zip(table.columns, got, strict=True):
            want = types[col.wire].oid
            if oid != want and not (oid == bpchar and want == text):
                raise MigrationError(
                    f"column {table.name}.{col.name}: its export expression yields type oid "
                    f"{oid}, not {col.wire} (a bug in the type mapping; please report it)"
                )
        yield cur.stream(select, size=STREAM_ROWS)


def _close_chunk(writer: ChunkWriter, chunks: list[ChunkInfo], sink: ExportSink | None) -> None:
    info = writer.close()
    if sink is not None:
        sink.chunk_done(len(chunks), info)
    chunks.append(info)
