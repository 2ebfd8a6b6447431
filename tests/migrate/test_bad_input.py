"""Bad input gives one clear line and a documented exit code, and never a half-written
target that looks complete."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import apsw
import jsonschema
import psycopg
import pytest
from click.testing import CliRunner

from edgestore.cli.main import main
from edgestore.errors import MigrationError, SnapshotError, SourceError
from edgestore.migrate import export_snapshot, import_snapshot, read_plan, run, validate

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["migrate", *args])
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def small(make_db: Callable[..., str]) -> str:
    return make_db(
        "CREATE TABLE a (id serial PRIMARY KEY, v text);"
        "INSERT INTO a (v) VALUES ('x'), ('y');"
        "CREATE TABLE secret (id int PRIMARY KEY);"
        "CREATE ROLE limited LOGIN;"
        "GRANT SELECT ON a TO limited;"
    )


def test_unreachable_source(tmp_path: Path) -> None:
    code, _, err = _cli("plan", "--from", "postgresql://u@127.0.0.1:1/db")
    assert code == 3
    assert "cannot connect to postgresql://u@127.0.0.1:1/db" in err
    assert "is the server running" in err
    assert "Traceback" not in err


def test_wrong_credentials_are_redacted(small: str) -> None:
    dsn = small.replace("postgres:@", "nobody:hunter2@")
    with pytest.raises(SourceError) as info:
        read_plan(dsn)
    assert "wrong user or password" in info.value.detail
    assert "hunter2" not in info.value.detail


def test_missing_permission(small: str) -> None:
    dsn = small.replace("postgres:@", "limited:@")
    with pytest.raises(SourceError, match=r"may not SELECT from public\.secret"):
        read_plan(dsn)
    assert [t.name for t in read_plan(dsn, tables=["a"]).tables] == ["a"]


def test_unknown_schema_and_table(small: str) -> None:
    with pytest.raises(SourceError, match="schema 'nope' does not exist"):
        read_plan(small, schema="nope")
    with pytest.raises(SourceError, match="tables not found in schema 'public': zzz"):
        read_plan(small, tables=["zzz"])


def test_snapshot_from_a_newer_format_or_unfinished(small: str, tmp_path: Path) -> None:
    snap = tmp_path / "s"
    export_snapshot(small, snap)
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["format_version"] = 99
    (snap / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = _cli("import", "--from", str(snap), "--to", str(tmp_path / "t.db"))
    assert code == 4
    assert "snapshot format version 99" in err
    assert "upgrade edgestore" in err
    (snap / "manifest.json").unlink()
    with pytest.raises(SnapshotError, match="an export that did not finish"):
        import_snapshot(snap, tmp_path / "t.db")
    assert not (tmp_path / "t.db").exists()


def test_export_refuses_a_non_empty_directory(small: str, tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "other").write_text("x")
    with pytest.raises(MigrationError, match="--replace"):
        export_snapshot(small, tmp_path / "s")
    export_snapshot(small, tmp_path / "s", replace=True)
    assert not (tmp_path / "s" / "other").exists()


def test_target_with_the_tables_is_refused_unless_replace(small: str, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    db = apsw.Connection(str(target))
    db.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (9, 'old')")
    db.close()
    code, _, err = _cli("run", "--from", small, "--to", str(target))
    assert code == 5
    assert "already has tables a" in err
    assert "--replace" in err
    code, _, err = _cli("run", "--from", small, "--to", str(target), "--replace")
    assert code == 0, err
    db = apsw.Connection(str(target))
    assert db.execute("SELECT id, v FROM a ORDER BY id").fetchall() == [(1, "x"), (2, "y")]
    # AUTOINCREMENT continues after the Postgres sequence
    assert db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'a'").fetchone()[0] == 2


def test_import_into_an_existing_database_without_those_tables(small: str, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    db = apsw.Connection(str(target))
    db.execute("CREATE TABLE keep (x); INSERT INTO keep VALUES (1)")
    db.close()
    report = run(small, target)
    assert report["ok"]
    db = apsw.Connection(str(target))
    assert db.execute("SELECT x FROM keep").fetchall() == [(1,)]


def test_outputs_match_their_json_schemas(small: str, tmp_path: Path) -> None:
    snap = tmp_path / "s"
    export_snapshot(small, snap)
    manifest_schema = json.loads((SCHEMAS / "snapshot-manifest.schema.json").read_text())
    report_schema = json.loads((SCHEMAS / "validation-report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(manifest_schema)
    jsonschema.validate(json.loads((snap / "manifest.json").read_text()), manifest_schema)
    target = tmp_path / "t.db"
    import_snapshot(snap, target)
    jsonschema.validate(validate(snap, target), report_schema)
    db = apsw.Connection(str(target))
    db.execute("UPDATE a SET v = 'changed' WHERE id = 1; DELETE FROM a WHERE id = 2")
    db.close()
    bad = validate(small, target)
    assert bad["ok"] is False
    jsonschema.validate(bad, report_schema)
    code, out, _ = _cli("validate", "--from", str(snap), "--to", str(target), "--format", "json")
    assert code == 1
    jsonschema.validate(json.loads(out), report_schema)


def test_table_names_sqlite_cannot_hold_apart(make_db: Callable[..., str]) -> None:
    dsn = make_db('CREATE TABLE "Users" (id int); CREATE TABLE users (id int);')
    with pytest.raises(MigrationError, match="differ only in case"):
        read_plan(dsn)


def test_validate_refuses_an_unfinished_target(small: str, tmp_path: Path) -> None:
    with psycopg.connect(small) as conn:
        assert conn.execute("SELECT count(*) FROM a").fetchone()[0] == 2
    with pytest.raises(MigrationError, match="does not exist"):
        validate(small, tmp_path / "missing.db")


def test_pipeline_file_supplies_run_options(small: str, tmp_path: Path) -> None:
    cfg = tmp_path / "pipe.toml"
    cfg.write_text(
        f'[run]\nfrom = "{small}"\nto = "out.db"\nreport = "r.json"\nkeep_snapshot = true\n'
    )
    code, _, err = _cli("run", "--config", str(cfg))
    assert code == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True
    assert (tmp_path / "out.db.snapshot" / "manifest.json").exists()
    (tmp_path / "bad.toml").write_text("[run]\nfrom = 'x'\nturbo = true\n")
    code, _, err = _cli("run", "--config", str(tmp_path / "bad.toml"))
    assert code == 5
    assert "unknown keys in [run]: turbo" in err


def test_example_inputs_in_the_repository_parse() -> None:
    from edgestore.migrate.overrides import load_overrides, load_pipeline

    examples = SCHEMAS.parent / "migrate"
    assert load_overrides(examples / "type-overrides.example.toml")["products.unit_price"] == "real"
    assert load_pipeline(examples / "pipeline.example.toml")["chunk_rows"] == 250000
