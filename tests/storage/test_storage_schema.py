"""Schema files: applied in order, each exactly once, tracked; changed files refused."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

import edgestore


def write(directory: Path, name: str, sql: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(sql, encoding="utf-8")


async def test_schemas_apply_in_order_once(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write(schemas, "0002_add_price.sql", "ALTER TABLE things ADD COLUMN price INT;")
    write(schemas, "0001_things.sql", "CREATE TABLE things(id INTEGER PRIMARY KEY, name TEXT);")
    write(schemas, "README.md", "not a schema")
    db = tmp_path / "s.db"
    async with await edgestore.open(db, schemas_dir=schemas) as st:
        res = await st.query("SELECT name FROM sqlite_edgestore_schema ORDER BY name")
        assert res.values == [("0001_things.sql",), ("0002_add_price.sql",)]
        await st.execute("INSERT INTO things(name, price) VALUES ('a', 1)")
    write(schemas, "0003_more.sql", "CREATE TABLE more(x);\nCREATE INDEX more_x ON more(x);")
    async with await edgestore.open(db, schemas_dir=schemas) as st:
        assert await st.apply_schemas() == []
        assert (await st.query("SELECT count(*) FROM sqlite_edgestore_schema")).values == [(3,)]
        assert (await st.query("SELECT count(*) FROM things")).values == [(1,)]
        assert st.deps("SELECT * FROM more").reads == {"more"}


async def test_changed_schema_file_is_an_error(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write(schemas, "0001_t.sql", "CREATE TABLE t(x);")
    db = tmp_path / "s.db"
    async with await edgestore.open(db, schemas_dir=schemas):
        pass
    write(schemas, "0001_t.sql", "CREATE TABLE t(x, y);")
    with pytest.raises(edgestore.SchemaError, match=r"0001_t\.sql"):
        await edgestore.open(db, schemas_dir=schemas)


async def test_failing_schema_file_names_itself_and_rolls_back(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write(schemas, "0001_ok.sql", "CREATE TABLE ok(x);")
    write(schemas, "0002_bad.sql", "CREATE TABLE half(x);\nCREATE TABLE broken(;")
    db = tmp_path / "s.db"
    with pytest.raises(edgestore.SchemaError, match=r"0002_bad\.sql") as info:
        await edgestore.open(db, schemas_dir=schemas)
    assert isinstance(info.value.__cause__, Exception)
    async with await edgestore.open(db, schemas_dir=None) as st:
        names = (await st.query("SELECT name FROM sqlite_schema WHERE type = 'table'")).values
        assert ("ok",) in names
        assert ("half",) not in names


async def test_default_schemas_dir_is_optional(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        async with await edgestore.open(tmp_path / "d.db") as st:
            assert (await st.query("SELECT 1")).values == [(1,)]
        with pytest.raises(edgestore.ConfigError):
            await edgestore.open(tmp_path / "e.db", schemas_dir=tmp_path / "missing")
    finally:
        os.chdir(cwd)


REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


async def test_repository_example_schema_applies(tmp_path: Path) -> None:
    repo_schemas = REPO_SCHEMAS
    async with await edgestore.open(tmp_path / "x.db", schemas_dir=repo_schemas) as st:
        await st.execute("INSERT INTO items(name, price) VALUES ('a', 1)")
        res = await st.query("SELECT name, price FROM items")
        assert res.values == [("a", 1)]


async def test_stores_opening_at_once_apply_each_file_once(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    for i in range(1, 6):
        write(schemas, f"000{i}_t{i}.sql", f"CREATE TABLE t{i}(x);")
    db = tmp_path / "s.db"
    first = await edgestore.open(db, schemas_dir=None)  # the file exists, in WAL mode
    stores = await asyncio.gather(
        *(edgestore.open(db, schemas_dir=schemas, busy_timeout_ms=10_000) for _ in range(4))
    )
    try:
        res = await first.query("SELECT count(*) FROM sqlite_edgestore_schema")
        assert res.values == [(5,)]
    finally:
        for st in [first, *stores]:
            await st.close()


async def test_schema_record_is_a_table_schema_tools_skip(tmp_path: Path) -> None:
    """drizzle-kit, SQLAlchemy/Alembic, Prisma and Kysely skip sqlite_% tables when they list
    a database's tables; a user's DROP TABLE of it (a forced schema push) is refused."""
    schemas = tmp_path / "schemas"
    write(schemas, "0001_t.sql", "CREATE TABLE t(x);")
    db = tmp_path / "s.db"
    async with await edgestore.open(db, schemas_dir=schemas) as st:
        listed = await st.query(
            "SELECT name FROM sqlite_schema WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        assert listed.values == [("t",)]
        with pytest.raises(edgestore.DatabaseError, match="may not be dropped"):
            await st.execute("DROP TABLE sqlite_edgestore_schema")
    async with await edgestore.open(db, schemas_dir=None) as st:
        assert (await st.query("PRAGMA integrity_check")).values == [("ok",)]


async def test_legacy_schema_record_is_moved(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write(schemas, "0001_t.sql", "CREATE TABLE t(x);")
    write(schemas, "0002_u.sql", "CREATE TABLE u(x);")
    db = tmp_path / "s.db"
    # A database made by an edgestore that recorded files in _edgestore_schema (0001 applied).
    async with await edgestore.open(db, schemas_dir=None) as st:
        sha = hashlib.sha256((schemas / "0001_t.sql").read_bytes()).hexdigest()
        await st.execute("CREATE TABLE t(x)")
        await st.execute(
            "CREATE TABLE _edgestore_schema ("
            " name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        await st.execute(
            "INSERT INTO _edgestore_schema VALUES ('0001_t.sql', ?, '2026-01-01T00:00:00+00:00')",
            [sha],
        )
    async with await edgestore.open(db, schemas_dir=schemas) as st:
        res = await st.query("SELECT name, applied_at FROM sqlite_edgestore_schema ORDER BY name")
        assert res.values[0] == ("0001_t.sql", "2026-01-01T00:00:00+00:00")
        assert [r[0] for r in res.values] == ["0001_t.sql", "0002_u.sql"]
        gone = await st.query("SELECT count(*) FROM sqlite_schema WHERE name = '_edgestore_schema'")
        assert gone.values == [(0,)]


async def test_no_schema_files_no_record_table(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    async with await edgestore.open(tmp_path / "s.db", schemas_dir=schemas) as st:
        assert await st.apply_schemas() == []
        res = await st.query("SELECT name FROM sqlite_schema WHERE name LIKE '%edgestore%'")
        assert res.values == []
