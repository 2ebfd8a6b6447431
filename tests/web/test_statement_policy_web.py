"""The statement policy over the JSON API, per role, and admin backups into backup_dir."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from litestar.testing import TestClient

from edgestore.auth import hash_token
from edgestore.cli.main import main as cli

from .conftest import AppFactory
from .test_sql_api import assert_error

RO, RW, ADMIN = "ro-secret", "rw-secret", "admin-secret"
TOKENS = (f"ro:{hash_token(RO)}", f"rw:{hash_token(RW)}", f"admin:{hash_token(ADMIN)}")

SCHEMA = [
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
    "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE)",
    "CREATE TABLE checked(x INT CHECK (x > 0))",
    "INSERT INTO users VALUES (1, 'ann'), (2, 'bob')",
    "INSERT INTO posts VALUES (1, 'a', 1), (2, 'b', 1), (3, 'c', 2)",
]


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _batch(client: TestClient[Any], token: str | None, *sqls: str, atomic: bool = True) -> Any:
    return client.post(
        "/api/v1/batch",
        json={"statements": [{"sql": s} for s in sqls], "atomic": atomic},
        headers=_auth(token) if token else {},
    )


def _execute(client: TestClient[Any], token: str | None, sql: str) -> Any:
    return client.post("/api/v1/execute", json={"sql": sql}, headers=_auth(token) if token else {})


def _setup(client: TestClient[Any], token: str | None = None) -> None:
    resp = _batch(client, token, *SCHEMA, atomic=False)
    assert resp.status_code == 200
    assert all("result" in item for item in resp.json()["results"]), resp.text


def _count(client: TestClient[Any], sql: str, token: str | None = None) -> Any:
    resp = client.post(
        "/api/v1/query",
        json={"sql": sql, "cache": False},
        headers=_auth(token) if token else {},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["rows"][0][0]


def test_read_only_batch_cannot_reconfigure_the_server(app_client: AppFactory) -> None:
    client = app_client(auth_tokens=TOKENS, schemas_dir=None)
    _setup(client, RW)
    for sql in (
        "PRAGMA ignore_check_constraints=1",
        "PRAGMA max_page_count=1",
        "PRAGMA hard_heap_limit=1000",
        "PRAGMA foreign_keys=0",
    ):
        resp = _batch(client, RO, sql)
        assert resp.status_code in (400, 403), (sql, resp.text)
        assert resp.json()["error"]["code"] in ("SQLITE_AUTH", "SQLITE_READONLY"), sql
    # CHECK constraints, the page limit and the heap limit are what they were.
    assert_error(_execute(client, RW, "INSERT INTO checked VALUES (-1)"), 400)
    assert _batch(client, RW, *[f"INSERT INTO checked VALUES ({i + 1})" for i in range(300)])
    assert _count(client, "SELECT count(*) FROM checked", RO) == 300
    assert _count(client, "PRAGMA hard_heap_limit", RO) == 0
    # Reads of the same settings and introspection are fine for ro.
    resp = _batch(client, RO, "PRAGMA foreign_keys", "PRAGMA table_info(posts)")
    assert resp.status_code == 200, resp.text


def test_vacuum_into_is_refused_and_vacuum_needs_admin(
    app_client: AppFactory, tmp_path: Path
) -> None:
    client = app_client(auth_tokens=TOKENS, schemas_dir=None)
    _setup(client, RW)
    target = tmp_path / "stolen.db"
    for token in (RW, ADMIN):
        error = assert_error(_execute(client, token, f"VACUUM INTO '{target}'"), 400)
        assert error["code"] == "SQLITE_AUTH"
        assert "VACUUM INTO" in error["message"]
        error = assert_error(_batch(client, token, "SELECT 1", f"VACUUM INTO '{target}'"), 400)
        assert error["code"] == "SQLITE_AUTH"
    assert not target.exists()
    assert_error(_execute(client, RW, "VACUUM"), 400)
    assert _execute(client, ADMIN, "VACUUM").status_code == 200
    error = assert_error(_execute(client, RW, f"ATTACH '{target}' AS x"), 400)
    assert error["code"] == "SQLITE_AUTH"
    assert not target.exists()


def test_drizzle_rebuild_as_a_json_batch_keeps_every_row(client: TestClient[Any]) -> None:
    _setup(client)
    # Atomic: the leading PRAGMA holds for the batch's transaction.
    resp = _batch(
        client,
        None,
        "PRAGMA foreign_keys=off",
        "CREATE TABLE __new_users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)",
        "INSERT INTO __new_users(id, name) SELECT id, name FROM users",
        "DROP TABLE users",
        "ALTER TABLE __new_users RENAME TO users",
        "PRAGMA foreign_keys=on",
    )
    assert resp.status_code == 200, resp.text
    assert _count(client, "SELECT count(*) FROM posts") == 3
    # Not atomic: one session, with the rebuild's own BEGIN and COMMIT.
    resp = _batch(
        client,
        None,
        "PRAGMA foreign_keys=off",
        "BEGIN",
        "CREATE TABLE __new_users(id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "INSERT INTO __new_users SELECT id, name FROM users",
        "DROP TABLE users",
        "ALTER TABLE __new_users RENAME TO users",
        "COMMIT",
        "PRAGMA foreign_keys=on",
        atomic=False,
    )
    assert resp.status_code == 200, resp.text
    assert all("result" in item for item in resp.json()["results"]), resp.text
    assert _count(client, "SELECT count(*) FROM posts") == 3
    # The writer went back with foreign keys on: this delete cascades.
    assert _execute(client, None, "DELETE FROM users WHERE id = 2").status_code == 200
    assert _count(client, "SELECT count(*) FROM posts") == 2
    # Alone, a setting other than the default has no session to last in.
    assert _execute(client, None, "PRAGMA foreign_keys = ON").status_code == 200
    assert_error(_execute(client, None, "PRAGMA foreign_keys = OFF"), 400, "InvalidRequest")


def test_alter_column_over_the_json_api(client: TestClient[Any]) -> None:
    _setup(client)
    resp = _execute(client, None, 'ALTER TABLE "posts" ALTER COLUMN "title" TO "title" TEXT')
    assert resp.status_code == 200, resp.text
    assert _execute(client, None, "INSERT INTO posts VALUES (9, NULL, 1)").status_code == 200
    assert _count(client, "SELECT count(*) FROM posts WHERE title IS NULL") == 1
    error = assert_error(
        _execute(client, None, "ALTER TABLE posts ALTER COLUMN id TO id TEXT"), 400
    )
    assert "PRIMARY KEY" in error["message"]


def test_admin_backup_into_backup_dir(app_client: AppFactory, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    client = app_client(auth_tokens=TOKENS, schemas_dir=None, backup_dir=backups)
    _setup(client, RW)
    resp = client.post("/api/v1/admin/backup", json={"name": "one.db"}, headers=_auth(ADMIN))
    assert resp.status_code == 200, resp.text
    copy = Path(resp.json()["path"])
    assert copy == (backups / "one.db").resolve()
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT count(*) FROM posts").fetchone() == (3,)
    assert client.post("/api/v1/admin/backup", json={}, headers=_auth(ADMIN)).status_code == 200
    assert len(list(backups.iterdir())) == 2
    for name in ("../escape.db", "/tmp/abs.db", "one.db", ".hidden"):
        resp = client.post("/api/v1/admin/backup", json={"name": name}, headers=_auth(ADMIN))
        assert_error(resp, 400, "InvalidRequest")
    assert not (tmp_path / "escape.db").exists()
    resp = client.post("/api/v1/admin/backup", json={}, headers=_auth(RW))
    assert_error(resp, 403)


def test_backup_is_off_without_backup_dir(client: TestClient[Any]) -> None:
    error = assert_error(client.post("/api/v1/admin/backup", json={}), 400, "InvalidRequest")
    assert "backup_dir" in error["message"]


def test_backup_command(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t(x)")
        conn.execute("INSERT INTO t VALUES (42)")
    out = tmp_path / "out"
    out.mkdir()
    runner = CliRunner()
    result = runner.invoke(cli, ["backup", "--db", str(db), "--dir", str(out), "--name", "b.db"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out / "b.db") as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    result = runner.invoke(cli, ["backup", "--db", str(db)], env={"EDGESTORE_BACKUP_DIR": ""})
    assert result.exit_code == 1
    assert "backup_dir" in result.output
