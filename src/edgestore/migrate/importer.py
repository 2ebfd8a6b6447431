"""Snapshot directory -> SQLite file (WAL mode), resumable by chunk.

A new target is built as ``<target>.partial`` and renamed into place only when complete, so a
file at the target path is never a half-written import. Each chunk is loaded in one transaction
together with the row in ``sqlite_edgestore_migration`` (bookkeeping.py) that records it, so an
interrupted import (even SIGKILL or a full disk) resumes after the last committed chunk and ends
with exactly the rows an uninterrupted run would have. Indexes are built after the bulk load,
then foreign keys are checked (``PRAGMA foreign_key_check``) and AUTOINCREMENT positions set.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import apsw
import msgspec

from ..errors import MigrationError, SnapshotError
from ..storage.schema import create_reserved_table
from .bookkeeping import (
    META_COLUMNS,
    META_TABLE,
    SEQUENCES_COLUMNS,
    SEQUENCES_TABLE,
    adopt_legacy_tables,
    current_sequence_sql,
    meta_table_of,
)
from .plan import Plan, plan_digest
from .progress import Progress
from .snapshot import ChunkInfo, Manifest, iter_chunk_batches, read_manifest
from .typemap import quote_ident as q
from .views import verify_views

__all__ = [
    "META_TABLE",
    "STREAMING",
    "ImportResult",
    "holds_import_of",
    "import_snapshot",
    "partial_digest",
    "read_meta",
    "snapshot_digest",
    "target_meta",
]

# plan_digest of a partial import loaded during an export that has not finished: its snapshot
# identity is not known yet, so it can never be resumed (only discarded and redone)
STREAMING = "streaming"


@dataclass(frozen=True, slots=True)
class ImportResult:
    target: Path
    tables: int
    rows: int
    chunks_loaded: int
    chunks_skipped: int  # already committed by an earlier, interrupted run


def read_meta(db: apsw.Connection) -> dict[str, str] | None:
    """The migration metadata of a target, or None when it was not made by an import.

    A target made before the table had its ``sqlite_`` name is read under the old name."""
    table = meta_table_of(db)
    if table is None:
        return None
    return dict(db.execute(f"SELECT key, value FROM {table}"))


def target_clash(target: Path, names: set[str]) -> set[str]:
    """The tables of ``names`` that ``target`` (an existing SQLite file) already has."""
    return names & _user_tables(target) if target.exists() else set()


def _user_tables(path: Path) -> set[str]:
    db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
    except apsw.NotADBError as exc:
        raise MigrationError(f"target {path} exists and is not a SQLite database") from exc
    finally:
        db.close()


def _full(exc: apsw.Error, what: str) -> MigrationError:
    kind = "disk full" if isinstance(exc, apsw.FullError) else f"write failed ({exc})"
    return MigrationError(
        f"{kind} while {what}: the import stopped cleanly; free some space and run the "
        "same command again to resume"
    )


def import_snapshot(
    snapshot: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    replace: bool = False,
    progress: Progress | None = None,
    chunk_delay: float = 0.0,
) -> ImportResult:
    """Load a snapshot into ``target``. ``chunk_delay`` (seconds, testing aid) sleeps after
    each committed chunk so that an interruption can be staged."""
    progress = progress or Progress()
    directory = Path(snapshot)
    manifest = read_manifest(directory)
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    names = {t.name for t in manifest.plan.tables}
    digest = snapshot_digest(manifest)
    if holds_import_of(target, digest) and not (replace and holds_import_of(partial, digest)):
        # killed after the import completed (and was renamed into place): nothing left to do
        progress.message(f"{target} already holds the completed import of this snapshot")
        progress.close()
        return ImportResult(target, len(names), manifest_rows(manifest), 0, chunk_count(manifest))
    if holds_import_of(partial, digest):
        # killed between marking the partial file complete and renaming it into place
        progress.message(f"{partial} holds the completed import: moving it into place")
        _swap_into_place(partial, target)
        progress.close()
        return ImportResult(target, len(names), manifest_rows(manifest), 0, chunk_count(manifest))
    in_place = False
    if target.exists():
        clash = names & _user_tables(target)
        resuming = bool(clash) and partial_digest(target) == digest  # interrupted in place
        if clash and not replace and not resuming:
            raise MigrationError(
                f"target {target} already has tables {', '.join(sorted(clash))}; use --replace "
                "to build a new file in its place"
            )
        in_place = resuming or (not clash and not replace)
    work = target if in_place else partial

    if replace and work == partial and partial.exists() and partial_digest(partial) != digest:
        # --replace: a leftover partial import of another snapshot is discarded, not resumed
        for p in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            p.unlink(missing_ok=True)
    try:
        db = apsw.Connection(str(work))
    except apsw.Error as exc:
        raise MigrationError(f"cannot open {work}: {exc}") from exc
    try:
        result = _load(db, work, directory, manifest, digest, progress, chunk_delay)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except (apsw.FullError, apsw.IOError) as exc:
        raise _full(exc, f"importing into {work}") from exc
    finally:
        db.close()
    if not in_place:
        _swap_into_place(partial, target)
    progress.close()
    return ImportResult(target, result[0], result[1], result[2], result[3])


def snapshot_digest(manifest: Manifest) -> str:
    """The DDL and the snapshot's identity: resuming must continue the very same snapshot."""
    chunks = [c.sha256 for d in manifest.data for c in d.chunks]
    ident = hashlib.sha256(msgspec.json.encode([manifest.created_at, chunks])).hexdigest()
    return plan_digest(manifest.plan) + "-" + ident[:16]


def manifest_rows(manifest: Manifest) -> int:
    return sum(d.row_count for d in manifest.data)


def chunk_count(manifest: Manifest) -> int:
    return sum(len(d.chunks) for d in manifest.data)


def target_meta(path: Path) -> dict[str, str] | None:
    """The migration metadata of the SQLite file ``path`` (None: none, or not SQLite)."""
    if not path.exists():
        return None
    try:
        db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            return read_meta(db)
        finally:
            db.close()
    except apsw.Error:
        return None


def holds_import_of(path: Path, digest: str) -> bool:
    """Whether ``path`` holds the completed import of the snapshot with this digest."""
    meta = target_meta(path)
    return (
        meta is not None and meta.get("state") == "complete" and meta.get("plan_digest") == digest
    )


def partial_digest(path: Path) -> str | None:
    """The snapshot identity of an unfinished import in ``path`` (None if there is none)."""
    try:
        db = apsw.Connection(str(path))
        try:
            meta = read_meta(db)
        finally:
            db.close()
    except apsw.Error:
        return None
    if meta is None or meta.get("state") == "complete":
        return None
    return meta.get("plan_digest")


def _swap_into_place(partial: Path, target: Path) -> None:
    if target.exists():
        # let SQLite fold the old file's WAL in and remove it, so no stale -wal/-shm can be
        # applied to the new file after the rename
        old = apsw.Connection(str(target))
        try:
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            old.close()
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
        Path(str(partial) + suffix).unlink(missing_ok=True)
    os.replace(partial, target)


def set_load_pragmas(db: apsw.Connection) -> None:
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = OFF")  # checked once, after the load
    db.execute("PRAGMA cache_size = -8192")  # 8 MiB, whatever the table size
    db.execute("PRAGMA temp_store = FILE")
    db.setbusytimeout(5000)


def create_schema(db: apsw.Connection, plan: Plan) -> None:
    create_reserved_table(db, META_TABLE, META_COLUMNS)
    for t in plan.tables:
        db.execute(t.create_sql)
    db.executemany(
        f"INSERT INTO {META_TABLE} VALUES (?, ?)",
        [
            ("state", "loading"),
            ("plan_digest", STREAMING),
            ("source", plan.source),
            ("plan", msgspec.json.encode(plan).decode()),
        ],
    )


def snapshot_meta(manifest: Manifest) -> list[tuple[str, str]]:
    counts = {d.name: d.row_count for d in manifest.data}
    return [
        ("snapshot_created_at", manifest.created_at),
        ("row_counts", msgspec.json.encode(counts).decode()),
    ]


def _load(
    db: apsw.Connection,
    work: Path,
    directory: Path,
    manifest: Manifest,
    digest: str,
    progress: Progress,
    chunk_delay: float,
) -> tuple[int, int, int, int]:
    set_load_pragmas(db)
    if adopt_legacy_tables(db):
        progress.message(f"moved the bookkeeping tables of {work} to their sqlite_ names")
    meta = read_meta(db)
    plan = manifest.plan
    progress.phase("import", f"{len(plan.tables)} tables into {work}")
    if meta is None:
        with db:
            create_schema(db, plan)
            db.executemany(f"INSERT INTO {META_TABLE} VALUES (?, ?)", snapshot_meta(manifest))
            db.execute(f"UPDATE {META_TABLE} SET value = ? WHERE key = 'plan_digest'", (digest,))
    elif meta.get("state") == "complete":
        raise MigrationError(f"{work} already holds a completed import")
    elif meta.get("plan_digest") != digest:
        raise MigrationError(
            f"{work} holds an interrupted import of a different snapshot; delete it to start over"
        )
    elif meta.get("loaded_during_export") != "1":
        progress.message(f"resuming the interrupted import in {work}")
    done = {
        k for k, _ in db.execute(f"SELECT key, value FROM {META_TABLE} WHERE key LIKE 'chunk:%'")
    }
    loaded = skipped = total_rows = 0
    for table in plan.tables:
        data = manifest.table_data(table.name)
        total_rows += data.row_count
        insert = f"INSERT INTO {q(table.name)} VALUES ({', '.join('?' for _ in table.columns)})"
        progress.start(table.name, data.row_count)
        for i, chunk in enumerate(data.chunks):
            key = f"chunk:{table.name}:{i}"
            if key in done:
                skipped += 1
                progress.advance(chunk.rows)
                continue
            _load_chunk(db, directory, chunk, insert, key, table.name, progress)
            loaded += 1
            if chunk_delay:
                time.sleep(chunk_delay)
        progress.done()
    progress.phase("indexes")
    existing = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    for table in plan.tables:
        for ix in table.indexes:
            if ix.name in existing:
                continue
            try:
                with db:
                    db.execute(ix.sql)
            except apsw.ConstraintError as exc:
                raise MigrationError(
                    f"building unique index {ix.name} on {table.name} failed: {exc}"
                ) from exc
    progress.phase("foreign keys")
    violations = db.execute("PRAGMA foreign_key_check").fetchall()
    if violations:
        sample = "; ".join(f"{t} rowid {r} -> {p}" for t, r, p, _ in violations[:5])
        raise MigrationError(
            f"{len(violations)} rows violate foreign keys after import (e.g. {sample})"
        )
    objects = verify_views(db, plan.views)
    with db:
        _install_triggers(db, plan)
        db.execute(
            f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('objects', ?)",
            (msgspec.json.encode(objects).decode(),),
        )
        for table in plan.tables:
            seq = table.sequence
            if seq is None or seq.next_value is None or "AUTOINCREMENT" not in table.create_sql:
                continue
            db.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table.name,))
            db.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                (table.name, seq.next_value - 1),
            )
        db.execute(f"DELETE FROM {META_TABLE} WHERE key LIKE 'chunk:%'")
        db.execute(
            f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('completed_at', ?)",
            (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),),
        )
        db.execute(f"UPDATE {META_TABLE} SET value = 'complete' WHERE key = 'state'")
    db.execute("PRAGMA foreign_keys = ON")
    return len(plan.tables), total_rows, loaded, skipped


def _install_triggers(db: apsw.Connection, plan: Plan) -> None:
    """Sequence numbering (started after Postgres's last value) and translated triggers,
    created after the bulk load so that they never fire for the loaded rows."""
    numbered = [s for t in plan.tables for s in t.sequences]
    if numbered:
        create_reserved_table(db, SEQUENCES_TABLE, SEQUENCES_COLUMNS)
        db.executemany(
            f"INSERT OR REPLACE INTO {SEQUENCES_TABLE} VALUES (?, ?, ?)",
            [(s.sequence, (s.next_value or 1) - s.increment, s.increment) for s in numbered],
        )
    for table in plan.tables:
        for tr in table.triggers:
            db.execute(f"DROP TRIGGER IF EXISTS {q(tr.name)}")
            # a snapshot planned before the rename names the old sequences table
            db.execute(current_sequence_sql(tr.sql))


def _load_chunk(
    db: apsw.Connection,
    directory: Path,
    chunk: object,
    insert: str,
    key: str,
    table: str,
    progress: Progress,
) -> None:

    assert isinstance(chunk, ChunkInfo)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # decoded rows are acyclic lists; GC passes over them double the load time
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            for rows in iter_chunk_batches(directory, chunk):
                db.executemany(insert, rows)
                progress.advance(len(rows))
            db.execute(f"INSERT INTO {META_TABLE} VALUES (?, ?)", (key, chunk.sha256))
            db.execute("COMMIT")
        except BaseException:
            if not db.getautocommit():
                db.execute("ROLLBACK")
            raise
    except SnapshotError:
        raise
    except (apsw.FullError, apsw.IOError) as exc:
        raise _full(exc, f"loading {chunk.file} into {table}") from exc
    except apsw.Error as exc:
        raise MigrationError(f"loading {chunk.file} into {table} failed: {exc}") from exc
    finally:
        if gc_was_enabled:
            gc.enable()
