"""``run``: export, import and validate in one go, with one progress display."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import apsw

from ..errors import MigrationError, SnapshotError
from .bookkeeping import adopt_legacy_tables
from .export import DEFAULT_CHUNK_ROWS, export_snapshot, read_plan
from .importer import (
    META_TABLE,
    STREAMING,
    holds_import_of,
    import_snapshot,
    partial_digest,
    snapshot_digest,
    target_clash,
    target_meta,
)
from .progress import Progress
from .snapshot import MANIFEST, read_manifest
from .source import redact
from .streaming import StreamingLoad
from .validate import validate

__all__ = ["move", "run"]


def run(
    dsn: str,
    target: str | os.PathLike[str],
    *,
    schema: str = "public",
    tables: list[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    snapshot_dir: str | os.PathLike[str] | None = None,
    keep_snapshot: bool = False,
    replace: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    validate_source: bool = False,
    progress: Progress | None = None,
    partition_checks: bool = False,
) -> dict[str, Any]:
    """Move ``schema`` of the source into ``target`` and return the validation report.

    The snapshot goes to ``snapshot_dir`` (default ``<target>.snapshot``). If an earlier run was
    interrupted during import (``<target>.partial`` and a complete snapshot exist), the import
    resumes from that snapshot instead of exporting again. Validation compares the target with
    the snapshot, which is the source as of one consistent moment; ``validate_source`` also
    re-reads the live source (which differs if it took writes since).
    """
    progress = progress or Progress()
    target = Path(target)
    snap = Path(snapshot_dir) if snapshot_dir else target.with_name(target.name + ".snapshot")
    done = _validated_report(target, dsn)
    if done is not None and not replace and not (snap / MANIFEST).exists():
        # killed after validation, while removing the snapshot: the job was done
        progress.message(f"{target} already holds this source's validated migration")
        if snapshot_dir is None:
            shutil.rmtree(snap, ignore_errors=True)
        progress.close()
        return done
    move(
        dsn,
        target,
        snap,
        schema=schema,
        tables=tables,
        overrides=overrides,
        replace_snapshot=snapshot_dir is None,
        replace=replace,
        chunk_rows=chunk_rows,
        progress=progress,
        partition_checks=partition_checks,
    )
    report = validate(snap, target, progress=progress)
    if validate_source:
        live = validate(dsn, target, progress=progress)
        report["live_source"] = {"ok": live["ok"], "tables": live["tables"]}
    if report["ok"]:
        _store_report(target, report)
        if not keep_snapshot and snapshot_dir is None:
            # the manifest first: a directory without one is no snapshot (and a re-run killed
            # here finds the validated target above instead of a half-deleted snapshot)
            (snap / MANIFEST).unlink(missing_ok=True)
            shutil.rmtree(snap, ignore_errors=True)
    progress.close()
    return report


def _validated_report(target: Path, dsn: str) -> dict[str, Any] | None:
    """The stored report of a validated migration of ``dsn`` into ``target``, if any."""
    meta = target_meta(target)
    if meta is None or meta.get("source") != redact(dsn) or "validation_report" not in meta:
        return None
    report: dict[str, Any] = json.loads(meta["validation_report"])
    return report if report.get("ok") else None


def _store_report(target: Path, report: dict[str, Any]) -> None:
    db = apsw.Connection(str(target))
    try:
        db.setbusytimeout(5000)
        adopt_legacy_tables(db)  # a target migrated before the sqlite_ names
        with db:
            db.execute(
                f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('validation_report', ?)",
                (json.dumps(report),),
            )
    finally:
        db.close()


def _imported(target: Path, snap: Path) -> bool:
    """Whether ``target`` holds the completed import of the snapshot in ``snap`` (a run killed
    after the import was renamed into place, before or during validation)."""
    try:
        return holds_import_of(target, snapshot_digest(read_manifest(snap)))
    except SnapshotError:
        return False


def move(
    dsn: str,
    target: Path,
    snap: Path,
    *,
    schema: str = "public",
    tables: list[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    replace_snapshot: bool = False,
    replace: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    partition_checks: bool = False,
) -> None:
    """Export into ``snap`` and import it into ``target`` (``run`` without the validation).

    A new target (or ``replace``) is loaded during the export, chunk by chunk (see
    StreamingLoad): each row is parsed once and SQLite works while Postgres produces the
    next rows. The import then only builds indexes, checks foreign keys and sets sequences.
    """
    progress = progress or Progress()
    partial = target.with_name(target.name + ".partial")
    stale = partial.exists() and partial_digest(partial) == STREAMING  # killed while exporting
    resume = (snap / MANIFEST).exists() and (partial.exists() or _imported(target, snap))
    if resume and stale:
        # killed between writing the manifest and stamping the partial: load the snapshot anew
        for p in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            p.unlink(missing_ok=True)
    if resume:
        progress.message(f"resuming from the existing snapshot {snap}")
    else:
        if target.exists() and not replace:
            # fail before the (long) export, not after it
            names = {t.name for t in read_plan(dsn, schema=schema, tables=tables).tables}
            clash = target_clash(target, names)
            if clash:
                raise MigrationError(
                    f"target {target} already has tables {', '.join(sorted(clash))}; use "
                    "--replace to build a new file in its place"
                )
        # an existing target without the tables is imported in place afterwards, and a
        # leftover partial of another import is left for import_snapshot to judge
        stream = (replace or not target.exists()) and (stale or replace or not partial.exists())
        export_snapshot(
            dsn,
            snap,
            schema=schema,
            tables=tables,
            overrides=overrides,
            chunk_rows=chunk_rows,
            replace=replace_snapshot,
            progress=progress,
            sink=StreamingLoad(target) if stream else None,
            partition_checks=partition_checks,
        )
    import_snapshot(snap, target, replace=replace, progress=progress)
