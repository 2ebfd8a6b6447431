"""Proof that the target holds what the source held.

Per table: row counts and the order-independent content checksum (normalise.RowHasher) of the
source -- a live Postgres read in one REPEATABLE READ snapshot through the very export
expressions, or a snapshot directory -- against the SQLite target. On a mismatch, the 1024
bucket sums show which buckets differ; a second pass keeps only rows of those buckets (so memory
stays bounded) and names the differing primary keys. The report is a plain dict matching
``schemas/validation-report.schema.json``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import msgspec

from ..errors import MigrationError
from .bookkeeping import LEGACY_META_TABLE, META_TABLE
from .importer import read_meta
from .normalise import BUCKETS, RowHasher, encode_row, fix_nan, row_hash
from .plan import Plan, TablePlan
from .progress import Progress
from .snapshot import iter_chunk_batches, read_manifest
from .typemap import quote_ident as q

__all__ = ["REPORT_VERSION", "validate"]

REPORT_VERSION = 1
NARROW_ROWS = 100_000  # rows per side held while naming differing keys
RowSource = Callable[[TablePlan], Iterator[list[Any]]]  # yields batches of normalised rows


def _open_target(target: Path) -> tuple[apsw.Connection, dict[str, str] | None]:
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        hint = (
            f" ({partial} exists: the import did not finish, re-run it)" if partial.exists() else ""
        )
        raise MigrationError(f"target {target} does not exist{hint}")
    db = apsw.Connection(str(target), flags=apsw.SQLITE_OPEN_READONLY)
    meta = read_meta(db)
    if meta is not None and meta.get("state") != "complete":
        db.close()
        raise MigrationError(f"target {target} holds an unfinished import; re-run the import")
    return db, meta


def _target_rows(db: apsw.Connection) -> RowSource:
    def rows(table: TablePlan) -> Iterator[list[Any]]:
        cols = ", ".join(q(c.name) for c in table.columns)
        cur = db.execute(f"SELECT {cols} FROM {q(table.name)}")
        while batch := list(itertools.islice(cur, 5000)):
            yield batch

    return rows


def _snapshot_rows(directory: Path) -> RowSource:
    manifest = read_manifest(directory)

    def rows(table: TablePlan) -> Iterator[list[Any]]:
        for chunk in manifest.table_data(table.name).chunks:
            yield from iter_chunk_batches(directory, chunk)

    return rows


def _postgres_rows(conn: Any) -> RowSource:
    def rows(table: TablePlan) -> Iterator[list[Any]]:
        float_idx = [i for i, c in enumerate(table.columns) if c.float_column]
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY ({table.select_sql()}) TO STDOUT (FORMAT BINARY)") as copy,
        ):
            copy.set_types([c.wire for c in table.columns])
            batch: list[Any] = []
            for row in copy.rows():
                batch.append(row)
                if len(batch) >= 5000:
                    yield fix_nan(batch, float_idx)
                    batch = []
            if batch:
                yield fix_nan(batch, float_idx)

    return rows


def _key_idx(table: TablePlan) -> list[int]:
    pos = {c.name: i for i, c in enumerate(table.columns)}
    return [pos[name] for name in table.primary_key]


def _hash(source: RowSource, table: TablePlan, progress: Progress) -> RowHasher:
    h = RowHasher(_key_idx(table))
    for batch in source(table):
        h.update(batch)
        progress.advance(len(batch))
    return h


def _show(v: Any) -> Any:
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    if isinstance(v, float) and (v != v or v in (math.inf, -math.inf)):
        return str(v)  # JSON has no NaN/Infinity: 'nan', 'inf', '-inf'
    return v


def _narrow(
    source: RowSource,
    target: RowSource,
    table: TablePlan,
    buckets: set[int],
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of the differing buckets only, keyed by primary key (or by content)."""
    key_idx = _key_idx(table)
    pk_names = list(table.primary_key)
    bucketer = RowHasher(key_idx)

    def collect(src: RowSource) -> dict[Any, tuple[int, list[Any]]]:
        out: dict[Any, tuple[int, list[Any]]] = {}
        seen: dict[int, int] = {}
        for batch in src(table):
            for row in batch:
                h = row_hash(row)
                if bucketer.bucket(row, h) not in buckets:
                    continue
                if key_idx:
                    key: Any = encode_row([row[i] for i in key_idx])
                    out[key] = (h, list(row))
                else:  # no key: a multiset of row contents, duplicates numbered
                    n = seen.get(h, 0)
                    seen[h] = n + 1
                    out[(h, n)] = (h, list(row))
        return out

    src, dst = collect(source), collect(target)
    diffs: list[dict[str, Any]] = []
    count = 0
    for key in sorted(set(src) | set(dst), key=repr):
        a, b = src.get(key), dst.get(key)
        if a is not None and b is not None and a[0] == b[0]:
            continue
        count += 1
        if len(diffs) >= limit:
            continue
        row = (a or b)[1]  # type: ignore[index]
        entry: dict[str, Any] = {
            "kind": "changed" if a and b else ("missing_in_target" if a else "extra_in_target")
        }
        if key_idx:
            entry["key"] = {n: _show(row[i]) for n, i in zip(pk_names, key_idx, strict=True)}
        if a and b:
            entry["columns"] = {
                c.name: {"source": _show(x), "target": _show(y)}
                for c, x, y in zip(table.columns, a[1], b[1], strict=True)
                if encode_row([x]) != encode_row([y])
            }
        else:
            entry["row"] = {c.name: _show(v) for c, v in zip(table.columns, row, strict=True)}
        diffs.append(entry)
    return diffs, count


def validate(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    schema: str = "public",
    tables: list[str] | None = None,
    limit: int = 10,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Compare ``source`` (a Postgres DSN or a snapshot directory) with the SQLite ``target``.

    Returns the report; ``report["ok"]`` is False on any difference (the CLI exits 1).
    """
    progress = progress or Progress()
    target_path = Path(target)
    db, meta = _open_target(target_path)
    conn: Any = None
    src_text = os.fspath(source)
    try:
        is_pg = src_text.startswith(("postgres://", "postgresql://")) or (
            "=" in src_text and not Path(src_text).exists()
        )
        if is_pg:
            from .export import plan_in_snapshot
            from .source import connect, redact

            conn = connect(src_text)
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if meta is not None and "plan" in meta:
                plan = msgspec.json.decode(meta["plan"], type=Plan)
            else:
                plan = plan_in_snapshot(conn, src_text, schema, tables, None)
            source_rows = _postgres_rows(conn)
            source_label = redact(src_text)
        else:
            directory = Path(src_text)
            manifest = read_manifest(directory)
            plan = manifest.plan
            source_rows = _snapshot_rows(directory)
            source_label = str(directory)
        report = _compare(plan, source_rows, _target_rows(db), db, tables, limit, progress)
    except apsw.Error as exc:
        raise MigrationError(f"reading target {target_path} failed: {exc}") from exc
    finally:
        if conn is not None:
            conn.rollback()
            conn.close()
        db.close()
    report["source"] = source_label
    report["target"] = str(target_path)
    report.update(behaviour(plan, meta))
    progress.close()
    return report


def behaviour(plan: Plan, meta: dict[str, str] | None) -> dict[str, Any]:
    """What the target does differently from the source: the risky and lossy flags, every
    object not moved (with the reason), and the views and triggers that were moved."""
    flags = [f for t in plan.tables for f in t.flags] + plan.flags
    risky = [msgspec.to_builtins(f) for f in flags if f.severity in ("risky", "lossy")]
    outcomes: list[dict[str, str]] = msgspec.json.decode((meta or {}).get("objects", "[]"))
    not_moved = list(plan.not_moved) + [
        {"kind": o["kind"], "name": o["name"], "reason": o["reason"]}
        for o in outcomes
        if o["status"] != "verified"
    ]
    moved = [
        {"kind": "view", "name": o["name"], "how": "results verified against Postgres"}
        for o in outcomes
        if o["status"] == "verified"
    ]
    moved += [
        {"kind": "trigger", "name": tr.name, "how": tr.source}
        for t in plan.tables
        for tr in t.triggers
    ]
    return {"risky": risky, "not_moved": not_moved, "moved_objects": moved}


def _compare(
    plan: Plan,
    source_rows: RowSource,
    target_rows: RowSource,
    db: apsw.Connection,
    only: list[str] | None,
    limit: int,
    progress: Progress,
) -> dict[str, Any]:
    present = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")} - {
        META_TABLE,
        LEGACY_META_TABLE,
    }
    results: list[dict[str, Any]] = []
    chosen = [t for t in plan.tables if not only or t.name in only]
    if only:
        unknown = set(only) - {t.name for t in plan.tables}
        if unknown:
            raise MigrationError(f"tables not in the migration: {', '.join(sorted(unknown))}")
    for table in chosen:
        entry: dict[str, Any] = {
            "name": table.name,
            "primary_key": table.primary_key,
            "flags": sorted({f.code for f in table.flags}),
        }
        progress.phase("validate", table.name)
        progress.start(f"{table.name} (source)", table.estimated_rows or None)
        src = _hash(source_rows, table, progress)
        progress.done()
        entry["source_rows"] = src.count
        entry["source_checksum"] = src.checksum
        if table.name not in present:
            entry.update(
                status="missing",
                target_rows=0,
                target_checksum=None,
                differing_rows=src.count,
                differing_rows_exact=True,
                differences=[],
            )
            results.append(entry)
            continue
        progress.start(f"{table.name} (target)", src.count)
        dst = _hash(target_rows, table, progress)
        progress.done()
        entry["target_rows"] = dst.count
        entry["target_checksum"] = dst.checksum
        if src.count == dst.count and src.checksum == dst.checksum:
            entry.update(status="ok", differing_rows=0, differing_rows_exact=True, differences=[])
        else:
            # only rows of differing buckets are held in memory, about NARROW_ROWS per side at
            # most; when more buckets differ than that allows, the count is a lower bound
            buckets = sorted(src.differing_buckets(dst))
            per_bucket = max(src.count, dst.count) / BUCKETS
            allowed = max(16, int(NARROW_ROWS / max(per_bucket, 1.0)))
            examined = set(buckets[:allowed])
            diffs, count = _narrow(source_rows, target_rows, table, examined, limit)
            entry.update(
                status="mismatch",
                differing_rows=count,
                differing_rows_exact=len(examined) == len(buckets),
                differences=diffs,
            )
        results.append(entry)
    ok = all(r["status"] == "ok" for r in results)
    return {
        "report_version": REPORT_VERSION,
        "ok": ok,
        "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "normalisation": "edgestore typemap v1 (see README: Migrating from Postgres)",
        "tables": results,
    }
