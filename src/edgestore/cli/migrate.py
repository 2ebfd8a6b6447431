"""``edgestore migrate``: Postgres -> snapshot -> SQLite, validated. A thin shell.

Exit codes: 0 done (and validated), 1 validation found differences (or a --queries query
answered differently), 2 bad usage, 3 the source is unreachable or refused us, 4 the snapshot
is corrupt/incomplete/newer, 5 any other migration error (target refused, disk full, ...),
6 (``run --strict``) validated, but risky or lossy changes were made or objects not moved.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import MigrationError, MissingExtraError, SnapshotError, SourceError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_DIFFERENT = 1
EXIT_SOURCE = 3
EXIT_SNAPSHOT = 4
EXIT_MIGRATION = 5
EXIT_RISKY = 6


def _fail(exc: Exception) -> None:
    code = EXIT_MIGRATION
    if isinstance(exc, SourceError):
        code = EXIT_SOURCE
    elif isinstance(exc, SnapshotError):
        code = EXIT_SNAPSHOT
    click.echo(f"error: {exc}", err=True)
    sys.exit(code)


def _guard(fn: F) -> F:
    """Turn migration errors into one line on stderr and the documented exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (MigrationError, MissingExtraError) as exc:
            _fail(exc)

    return wrapper  # type: ignore[return-value]


def _tables(value: tuple[str, ...]) -> list[str] | None:
    names = [n.strip() for v in value for n in v.split(",") if n.strip()]
    return names or None


def _overrides(path: str | None) -> dict[str, str] | None:
    if path is None:
        return None
    from ..migrate.overrides import load_overrides

    return load_overrides(path)


def _progress(json_events: bool) -> Any:
    from ..migrate.progress import make_progress

    return make_progress(json_events=json_events)


_from_pg = click.option(
    "--from",
    "source",
    required=True,
    metavar="DSN",
    help="Postgres connection string (postgresql://user@host/db).",
)
_schema = click.option("--schema", default="public", show_default=True, help="Schema to move.")
_tables_opt = click.option(
    "--tables",
    multiple=True,
    metavar="T1,T2",
    help="Only these tables (comma-separated or repeated).",
)
_overrides_opt = click.option(
    "--overrides",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file of per-column type overrides.",
)
_partition_checks_opt = click.option(
    "--partition-checks",
    is_flag=True,
    help="Add the CHECK that contiguous range partition bounds imply (the plan offers it).",
)
_json_opt = click.option(
    "--json", "json_events", is_flag=True, help="Progress as JSON events (one per line on stdout)."
)


@click.group()
def migrate() -> None:
    """Move a Postgres database into SQLite: plan, export, import, validate (or run).

    \b
    Exit codes: 0 done, 1 validation found differences, 2 bad usage,
    3 source unreachable or refused, 4 snapshot corrupt/incomplete/newer,
    5 other migration error (target refused, disk full, ...),
    6 run --strict: validated, but risky changes were made or objects not moved.
    """


@migrate.command()
@_from_pg
@_schema
@_tables_opt
@_overrides_opt
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--write-ddl",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Also write the SQLite DDL to DIR/migrate-<schema>.sql for review.",
)
@_partition_checks_opt
@_guard
def plan(
    source: str,
    schema: str,
    tables: tuple[str, ...],
    overrides: str | None,
    fmt: str,
    write_ddl: str | None,
    partition_checks: bool,
) -> None:
    """Show what every table and column becomes, and every lossy or risky conversion."""
    import msgspec

    from ..migrate import read_plan, render_text

    p = read_plan(
        source,
        schema=schema,
        tables=_tables(tables),
        overrides=_overrides(overrides),
        partition_checks=partition_checks,
    )
    if fmt == "json":
        click.echo(msgspec.json.format(msgspec.json.encode(p), indent=2).decode())
    else:
        click.echo(render_text(p))
    if write_ddl:
        out = Path(write_ddl)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"migrate-{schema}.sql"
        path.write_text(f"-- SQLite DDL planned from {p.source}\n\n{p.ddl()}", encoding="utf-8")
        click.echo(f"DDL written to {path}", err=True)


@migrate.command()
@_from_pg
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(file_okay=False),
    help="Snapshot directory to create.",
)
@_schema
@_tables_opt
@_overrides_opt
@click.option(
    "--chunk-rows",
    default=250_000,
    show_default=True,
    type=click.IntRange(1),
    help="Rows per chunk file (the unit of import resumption).",
)
@click.option("--replace", is_flag=True, help="Overwrite a non-empty snapshot directory.")
@_partition_checks_opt
@_json_opt
@_guard
def export(
    source: str,
    target: str,
    schema: str,
    tables: tuple[str, ...],
    overrides: str | None,
    chunk_rows: int,
    replace: bool,
    partition_checks: bool,
    json_events: bool,
) -> None:
    """Stream the source into a snapshot directory (one consistent read)."""
    from ..migrate import export_snapshot

    m = export_snapshot(
        source,
        target,
        schema=schema,
        tables=_tables(tables),
        overrides=_overrides(overrides),
        chunk_rows=chunk_rows,
        replace=replace,
        progress=_progress(json_events),
        partition_checks=partition_checks,
    )
    rows = sum(d.row_count for d in m.data)
    if not json_events:
        click.echo(f"exported {len(m.data)} tables, {rows:,} rows to {target}")


@migrate.command("import")
@click.option(
    "--from", "source", required=True, type=click.Path(file_okay=False), help="Snapshot directory."
)
@click.option(
    "--to", "target", required=True, type=click.Path(dir_okay=False), help="SQLite database file."
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace a target that already has these tables (swapped in when done).",
)
@click.option(
    "--chunk-delay",
    type=float,
    default=0.0,
    hidden=True,
    help="Testing aid: sleep after each chunk so an interruption can be staged.",
)
@_json_opt
@_guard
def import_(source: str, target: str, replace: bool, chunk_delay: float, json_events: bool) -> None:
    """Load a snapshot into SQLite (WAL mode); resumes an interrupted import."""
    from ..migrate import import_snapshot

    r = import_snapshot(
        source, target, replace=replace, progress=_progress(json_events), chunk_delay=chunk_delay
    )
    if not json_events:
        resumed = f" ({r.chunks_skipped} chunks were already loaded)" if r.chunks_skipped else ""
        click.echo(f"imported {r.tables} tables, {r.rows:,} rows into {r.target}{resumed}")


def _emit_report(report: dict[str, Any], fmt: str, report_path: str | None) -> None:
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    for t in report["tables"]:
        line = f"{t['status']:<8} {t['name']}: {t['source_rows']:,} source rows, "
        line += f"{t['target_rows']:,} target rows"
        if t["status"] != "ok":
            line += f", {t['differing_rows']:,} differing"
        click.echo(line)
        for d in t["differences"]:
            where = d.get("key") or d.get("row")
            detail = f" {d['columns']}" if d.get("columns") else ""
            click.echo(f"    {d['kind']}: {where}{detail}")
    for q in report.get("queries", []):
        line = f"{q['status']:<9} query {q['name']}"
        if q["status"] == "error":
            line += f": {q['error']}"
        elif "postgres_rows" in q:
            line += f": {q['postgres_rows']} rows in Postgres, {q['sqlite_rows']} in SQLite"
        click.echo(line)
        for side in ("only_in_postgres", "only_in_sqlite"):
            for row in q.get(side, []):
                click.echo(f"    {side}: {row}")
    _emit_summary(report)
    click.echo("validation: OK" if report["ok"] else "validation: DIFFERENCES FOUND")


def _emit_summary(report: dict[str, Any]) -> None:
    """What the target does differently: risky/lossy changes and what was not moved."""
    risky = report.get("risky", [])
    not_moved = report.get("not_moved", [])
    if risky:
        click.echo(f"risky or lossy changes ({len(risky)}):")
        for f in risky:
            click.echo(f"  {f['severity']:<5} {f['code']} {f['object']}: {f['message']}")
    if not_moved:
        click.echo(f"not moved ({len(not_moved)}):")
        for n in not_moved:
            click.echo(f"  {n['kind']} {n['name']}: {n['reason']}")
    moved = report.get("moved_objects", [])
    if moved:
        click.echo(f"moved views and triggers ({len(moved)}):")
        for m in moved:
            click.echo(f"  {m['kind']} {m['name']}: {m['how']}")


@migrate.command()
@click.option(
    "--from",
    "source",
    required=True,
    metavar="DSN|DIR",
    help="The source: a Postgres DSN or a snapshot directory.",
)
@click.option(
    "--to", "target", required=True, type=click.Path(dir_okay=False), help="SQLite database file."
)
@_schema
@_tables_opt
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the JSON report to this file.",
)
@click.option("--limit", default=10, show_default=True, help="Differing keys shown per table.")
@click.option(
    "--queries",
    "queries_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file of [[query]] name/postgres/sqlite: run each on both sides, diff results.",
)
@_json_opt
@_guard
def validate(
    source: str,
    target: str,
    schema: str,
    tables: tuple[str, ...],
    fmt: str,
    report_path: str | None,
    limit: int,
    queries_path: str | None,
    json_events: bool,
) -> None:
    """Compare row counts and content checksums (and --queries results); exit 1 on any
    difference."""
    from ..migrate import validate as run_validate

    if queries_path is not None and Path(source).exists():
        raise MigrationError("--queries runs the queries in Postgres: --from must be a DSN")
    report = run_validate(
        source,
        target,
        schema=schema,
        tables=_tables(tables),
        limit=limit,
        progress=_progress(json_events) if json_events else None,
    )
    if queries_path is not None:
        from ..migrate.queries import run_queries

        report["queries"] = run_queries(source, target, queries_path)
        report["ok"] = report["ok"] and all(q["status"] == "same" for q in report["queries"])
    _emit_report(report, fmt, report_path)
    if not report["ok"]:
        sys.exit(EXIT_DIFFERENT)


def _load_pipeline(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Eager: a pipeline file supplies defaults; flags given on the command line win."""
    if value is None:
        return
    from ..migrate.overrides import load_pipeline

    try:
        ctx.default_map = {**(ctx.default_map or {}), **load_pipeline(value)}
    except MigrationError as exc:
        _fail(exc)


@migrate.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=_load_pipeline,
    help="Pipeline file (TOML, [run] table) giving defaults for these options.",
)
@_from_pg
@click.option(
    "--to", "target", required=True, type=click.Path(dir_okay=False), help="SQLite database file."
)
@_schema
@_tables_opt
@_overrides_opt
@click.option(
    "--snapshot-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the snapshot goes (default: <target>.snapshot, removed on success).",
)
@click.option("--keep-snapshot", is_flag=True, help="Keep the snapshot after success.")
@click.option("--replace", is_flag=True, help="Replace a target that already has these tables.")
@click.option("--chunk-rows", default=250_000, show_default=True, type=click.IntRange(1))
@click.option(
    "--validate-source",
    is_flag=True,
    help="Also validate against the live source (differs if it took writes since).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON validation report to this file.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 6 when validation passed but risky or lossy changes were made or objects were "
    "not moved.",
)
@_partition_checks_opt
@_json_opt
@_guard
def run(
    source: str,
    target: str,
    schema: str,
    tables: tuple[str, ...],
    overrides: str | None,
    snapshot_dir: str | None,
    keep_snapshot: bool,
    replace: bool,
    chunk_rows: int,
    validate_source: bool,
    report_path: str | None,
    strict: bool,
    partition_checks: bool,
    json_events: bool,
) -> None:
    """Plan, export, import and validate in one go; then say what behaves differently."""
    from ..migrate import run as run_pipeline

    report = run_pipeline(
        source,
        target,
        schema=schema,
        tables=_tables(tables),
        overrides=_overrides(overrides),
        snapshot_dir=snapshot_dir,
        keep_snapshot=keep_snapshot,
        replace=replace,
        chunk_rows=chunk_rows,
        validate_source=validate_source,
        progress=_progress(json_events),
        partition_checks=partition_checks,
    )
    if json_events:
        summary = {k: report.get(k, []) for k in ("risky", "not_moved", "moved_objects")}
        click.echo(json.dumps({"event": "summary", **summary}))
        click.echo(json.dumps({"event": "report", **report}))
        if report_path:
            Path(report_path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    else:
        _emit_report(report, "text", report_path)
    if not report["ok"]:
        sys.exit(EXIT_DIFFERENT)
    if strict and (report.get("risky") or report.get("not_moved")):
        sys.exit(EXIT_RISKY)
