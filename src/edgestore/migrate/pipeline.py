"""``run``: export, import and validate in one go, with one progress display."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import MigrationError
from .export import DEFAULT_CHUNK_ROWS, export_snapshot, read_plan
from .importer import import_snapshot, target_clash
from .progress import Progress
from .snapshot import MANIFEST
from .validate import validate

__all__ = ["run"]


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
    partial = target.with_name(target.name + ".partial")
    resume = partial.exists() and (snap / MANIFEST).exists()
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
        export_snapshot(
            dsn,
            snap,
            schema=schema,
            tables=tables,
            overrides=overrides,
            chunk_rows=chunk_rows,
            replace=snapshot_dir is None,
            progress=progress,
        )
    import_snapshot(snap, target, replace=replace, progress=progress)
    report = validate(snap, target, progress=progress)
    if validate_source:
        live = validate(dsn, target, progress=progress)
        report["live_source"] = {"ok": live["ok"], "tables": live["tables"]}
    if report["ok"] and not keep_snapshot and snapshot_dir is None:
        shutil.rmtree(snap, ignore_errors=True)
    progress.close()
    return report
