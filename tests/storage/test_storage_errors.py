"""SQLite errors become distinct edgestore errors carrying the extended code, chained."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

import edgestore
from edgestore.storage import Store


@pytest.mark.parametrize(
    ("sql", "params", "cls", "code", "base"),
    [
        ("SELEC 1", None, edgestore.SQLSyntaxError, "SQLITE_ERROR", "SQLITE_ERROR"),
        ("SELECT * FROM nope", None, edgestore.NoSuchTableError, "SQLITE_ERROR", "SQLITE_ERROR"),
        (
            "SELECT nope FROM items",
            None,
            edgestore.NoSuchColumnError,
            "SQLITE_ERROR",
            "SQLITE_ERROR",
        ),
        (
            "INSERT INTO items(name) VALUES ('dup')",
            None,
            edgestore.ConstraintViolation,
            "SQLITE_CONSTRAINT_UNIQUE",
            "SQLITE_CONSTRAINT",
        ),
        (
            "INSERT INTO items(name) VALUES (NULL)",
            None,
            edgestore.ConstraintViolation,
            "SQLITE_CONSTRAINT_NOTNULL",
            "SQLITE_CONSTRAINT",
        ),
        (
            "INSERT INTO items(id, name) VALUES (1, 'other')",
            None,
            edgestore.ConstraintViolation,
            "SQLITE_CONSTRAINT_PRIMARYKEY",
            "SQLITE_CONSTRAINT",
        ),
        ("SELECT ?", [1, 2], edgestore.ParameterError, "SQLITE_RANGE", "SQLITE_RANGE"),
    ],
)
async def test_error_classes_and_codes(
    store: Store, sql: str, params: list[int] | None, cls: type, code: str, base: str
) -> None:
    await store.execute("INSERT INTO items(id, name) VALUES (1, 'dup')")
    with pytest.raises(cls) as info:
        await store.execute(sql, params)
    err = info.value
    assert isinstance(err, edgestore.DatabaseError)
    assert err.code == code
    assert err.base_code == base
    assert err.detail
    if cls is not edgestore.ParameterError:  # those are refused before SQLite sees them
        assert isinstance(err.__cause__, apsw.Error)


async def test_check_and_foreign_key_violations(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None) as st:
        await st.execute("CREATE TABLE p(id INTEGER PRIMARY KEY)")
        await st.execute("CREATE TABLE c(p_id INT REFERENCES p(id), n INT CHECK (n > 0))")
        with pytest.raises(edgestore.ConstraintViolation) as info:
            await st.execute("INSERT INTO c VALUES (99, 1)")
        assert info.value.code == "SQLITE_CONSTRAINT_FOREIGNKEY"
        with pytest.raises(edgestore.ConstraintViolation) as info:
            await st.execute("INSERT INTO c VALUES (NULL, 0)")
        assert info.value.code == "SQLITE_CONSTRAINT_CHECK"


async def test_locked_database_is_busy_error(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None, busy_timeout_ms=50) as st:
        await st.execute("CREATE TABLE t(x)")
        other = apsw.Connection(str(db_path))
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(edgestore.DatabaseBusyError) as info:
                await st.execute("INSERT INTO t VALUES (1)")
            assert info.value.base_code == "SQLITE_BUSY"
        finally:
            other.execute("ROLLBACK")
            other.close()
        await st.execute("INSERT INTO t VALUES (2)")
        assert (await st.query("SELECT x FROM t")).values == [(2,)]


async def test_failed_statement_leaves_the_store_usable(store: Store) -> None:
    for _ in range(3):
        with pytest.raises(edgestore.NoSuchTableError):
            await store.query("SELECT * FROM missing")
    await store.execute("INSERT INTO items(name) VALUES ('ok')")
    assert (await store.query("SELECT count(*) FROM items")).values == [(1,)]
