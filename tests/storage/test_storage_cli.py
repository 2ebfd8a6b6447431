"""`edgestore schema apply` and `edgestore sql`, through click's CliRunner, full output."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from edgestore.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_the_storage_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    assert "schema" in out
    assert "sql" in out


def test_schema_apply(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "0001_a.sql").write_text("CREATE TABLE a(x);")
    (schemas / "0002_b.sql").write_text("CREATE TABLE b(y);")
    db = tmp_path / "app.db"
    code, out, err = run("schema", "apply", "--db", str(db), "--dir", str(schemas))
    assert (code, out, err) == (0, "applied 0001_a.sql\napplied 0002_b.sql\n", "")
    code, out, err = run("schema", "apply", "--db", str(db), "--dir", str(schemas))
    assert (code, out, err) == (0, f"nothing to apply: {db} is up to date with {schemas}\n", "")
    (schemas / "0001_a.sql").write_text("CREATE TABLE a(x, z);")
    code, out, err = run("schema", "apply", "--db", str(db), "--dir", str(schemas))
    assert code == 1
    assert out == ""
    assert err.startswith("Error: SchemaError: 0001_a.sql: changed after it was applied")


def test_schema_apply_missing_dir(tmp_path: Path) -> None:
    code, out, err = run(
        "schema", "apply", "--db", str(tmp_path / "a.db"), "--dir", str(tmp_path / "none")
    )
    assert code == 1
    assert out == ""
    assert err == f"Error: schema directory '{tmp_path / 'none'}' does not exist\n"


def test_sql_table_output(tmp_path: Path) -> None:
    db = str(tmp_path / "app.db")
    assert run("sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, b BLOB)", "--db", db) == (
        0,
        "rows affected: 0\n",
        "",
    )
    assert run("sql", "INSERT INTO t(name, b) VALUES ('alpha', x'00ff')", "--db", db) == (
        0,
        "rows affected: 1, last insert rowid: 1\n",
        "",
    )
    run("sql", "INSERT INTO t(name) VALUES ('b')", "--db", db)
    assert run("sql", "SELECT id, name, b FROM t ORDER BY id", "--db", db) == (
        0,
        "id  name   b\n--  -----  -------\n1   alpha  x'00ff'\n2   b      NULL\n(2 rows)\n",
        "",
    )


def test_sql_json_output(tmp_path: Path) -> None:
    db = str(tmp_path / "app.db")
    run("sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, b BLOB)", "--db", db)
    code, out, err = run(
        "sql", "INSERT INTO t(name, b) VALUES ('é', x'00ff')", "--db", db, "--json"
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "columns": [],
        "rows": [],
        "rows_affected": 1,
        "last_insert_rowid": 1,
    }
    code, out, err = run("sql", "SELECT * FROM t", "--db", db, "--json")
    assert (code, err) == (0, "")
    assert out == (
        '{"columns": ["id", "name", "b"], "rows": [[1, "é", {"base64": "AP8="}]], '
        '"rows_affected": 0, "last_insert_rowid": null}\n'
    )


def test_sql_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "app.db")
    assert run("sql", "SELECT * FROM nope", "--db", db) == (
        1,
        "",
        "Error: NoSuchTableError: no such table: nope [SQLITE_ERROR]\n",
    )
    assert run("sql", "SELECT 1; SELECT 2", "--db", db)[0] == 1
    run("sql", "CREATE TABLE u(x UNIQUE)", "--db", db)
    run("sql", "INSERT INTO u VALUES (1)", "--db", db)
    assert run("sql", "INSERT INTO u VALUES (1)", "--db", db) == (
        1,
        "",
        "Error: ConstraintViolation: UNIQUE constraint failed: u.x [SQLITE_CONSTRAINT_UNIQUE]\n",
    )


def test_sql_leaves_only_the_db_file(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    run("sql", "CREATE TABLE t(x)", "--db", str(db))
    run("sql", "INSERT INTO t VALUES (1)", "--db", str(db))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
