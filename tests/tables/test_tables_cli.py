"""`edgestore tables list` and `edgestore tables rows`, through click's CliRunner, full output."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import edgestore
from edgestore.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with edgestore.connect(path, schemas_dir=None) as store:
        store.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, b BLOB)")
        store.execute("CREATE INDEX items_name ON items(name)")
        store.execute("INSERT INTO items VALUES (1, 'b', x'00ff'), (2, 'a', NULL), (3, 'b', NULL)")
    return path


def test_tables_list(db: Path) -> None:
    code, out, err = run("tables", "list", "--db", str(db))
    assert (code, err) == (0, "")
    assert out == (
        '{"name": "items", "columns": [{"name": "id", "type": "INTEGER"}, '
        '{"name": "name", "type": "TEXT"}, {"name": "b", "type": "BLOB"}], '
        '"primary_key": ["id"], "orderable": ["id", "name"]}\n'
    )


def test_rows_pages_with_filters_order_and_cursor(db: Path) -> None:
    args = ("tables", "rows", "items", "--db", str(db), "--order", "-name", "--limit", "2")
    code, out, err = run(*args, "--where", "id__in=1,2,3")
    assert code == 0
    assert out == (
        '{"id": 3, "name": "b", "b": null}\n{"id": 1, "name": "b", "b": {"base64": "AP8="}}\n'
    )
    assert err.startswith("next: ")
    cursor = err.removeprefix("next: ").strip()
    code, out, err = run(*args, "--where", "id__in=1,2,3", "--after", cursor)
    assert (code, out, err) == (0, '{"id": 2, "name": "a", "b": null}\n', "")
    code, out, err = run("tables", "rows", "items", "--db", str(db), "--where", "name=a")
    assert (code, out, err) == (0, '{"id": 2, "name": "a", "b": null}\n', "")


def test_rows_errors(db: Path) -> None:
    code, out, err = run("tables", "rows", "items", "--db", str(db), "--order", "b")
    assert (code, out) == (1, "")
    assert err == (
        "Error: InvalidRequest: cannot order 'items' by 'b': not an indexed column "
        "(orderable: id, name)\n"
    )
    code, out, err = run("tables", "rows", "nope", "--db", str(db))
    assert (code, out, err) == (1, "", "Error: NotFoundError: no such table: nope\n")
    code, out, err = run("tables", "rows", "items", "--db", str(db), "--where", "name")
    assert code == 2
    assert "'name': expected COL[__OP]=VALUE" in err
