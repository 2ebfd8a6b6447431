"""libSQL's ``ALTER TABLE t ALTER COLUMN c TO c <definition>`` through the library, with
libSQL's semantics (storage/alter_column.py)."""

from __future__ import annotations

import pytest

import edgestore
from edgestore.storage import Store

# The conftest ``store`` fixture runs these.
SCHEMA = [
    "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL)",
    "CREATE TABLE posts(id INTEGER PRIMARY KEY, "
    "title TEXT NOT NULL DEFAULT 'untitled', "
    "body TEXT, "
    "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
    "CHECK (length(title) < 100))",
    "CREATE INDEX posts_title ON posts(title)",
    "CREATE TABLE audit(post_id INTEGER, title TEXT)",
    "CREATE TRIGGER posts_audit AFTER INSERT ON posts "
    "BEGIN INSERT INTO audit VALUES (new.id, new.title); END",
    "CREATE VIEW titles AS SELECT title FROM posts",
    "INSERT INTO users VALUES (1, 'a@x'), (2, 'b@x')",
    "INSERT INTO posts(id, title, user_id) VALUES (1, 'one', 1), (2, 'two', 2)",
]


async def _table_sql(store: Store, name: str) -> str:
    rows = await store.query("SELECT sql FROM sqlite_schema WHERE name = ?", (name,), cache=False)
    value = rows.values[0][0]
    assert isinstance(value, str)
    return value


async def test_drizzle_makes_a_column_nullable_and_changes_a_default(store: Store) -> None:
    # What drizzle-kit's turso dialect sends to drop NOT NULL and change the default.
    await store.execute('ALTER TABLE `posts` ALTER COLUMN "title" TO "title" text;')
    await store.execute(
        "ALTER TABLE posts ALTER COLUMN user_id TO user_id INTEGER NOT NULL "
        "REFERENCES users(id) ON DELETE CASCADE DEFAULT 1"
    )
    sql = await _table_sql(store, "posts")
    assert '"title" text,' in sql
    assert "DEFAULT 1" in sql
    # Rows, index, trigger, view, CHECK and foreign key are all still there and working.
    await store.execute("INSERT INTO posts(id, title) VALUES (3, NULL)")
    rows = await store.query("SELECT id, title, user_id FROM posts ORDER BY id", cache=False)
    assert rows.values == [(1, "one", 1), (2, "two", 2), (3, None, 1)]
    # The trigger ran for the two first rows and for the new one.
    assert (await store.query("SELECT count(*) FROM audit", cache=False)).values == [(3,)]
    assert (await store.query("SELECT count(*) FROM titles", cache=False)).values == [(3,)]
    plan = await store.query("EXPLAIN QUERY PLAN SELECT * FROM posts WHERE title = 'one'")
    assert "posts_title" in str(plan.values)
    with pytest.raises(edgestore.DatabaseError):
        await store.execute("INSERT INTO posts(id, title, user_id) VALUES (4, 'x', 999)")
    with pytest.raises(edgestore.DatabaseError):
        await store.execute(f"INSERT INTO posts(id, title) VALUES (5, '{'x' * 200}')")
    await store.execute("DELETE FROM users WHERE id = 2")
    assert (await store.query("SELECT count(*) FROM posts", cache=False)).values == [(2,)]
    assert (await store.query("PRAGMA integrity_check", cache=False)).values == [("ok",)]


async def test_existing_rows_are_not_checked(store: Store) -> None:
    # libSQL rewrites the definition only: a new NOT NULL holds for rows written afterwards.
    await store.execute("ALTER TABLE posts ALTER COLUMN body TO body TEXT NOT NULL")
    rows = await store.query("SELECT body FROM posts", cache=False)
    assert rows.values == [(None,), (None,)]
    with pytest.raises(edgestore.DatabaseError) as info:
        await store.execute("INSERT INTO posts(id, title, user_id) VALUES (9, 'x', 1)")
    assert "NOT NULL" in str(info.value)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("ALTER TABLE posts ALTER COLUMN title TO heading TEXT", "cannot also rename column"),
        ("ALTER TABLE posts ALTER COLUMN nope TO nope TEXT", 'no such column: "nope"'),
        ("ALTER TABLE nowhere ALTER COLUMN a TO a TEXT", "no such table: nowhere"),
        ("ALTER TABLE posts ALTER COLUMN id TO id INTEGER", "PRIMARY KEY constraint"),
        ("ALTER TABLE users ALTER COLUMN email TO email TEXT", "UNIQUE constraint"),
        ("ALTER TABLE posts ALTER COLUMN body TO body TEXT UNIQUE", "UNIQUE constraint"),
        ("ALTER TABLE titles ALTER COLUMN title TO title TEXT", "only ordinary tables"),
        ("ALTER TABLE sqlite_schema ALTER COLUMN sql TO sql TEXT", "may not be altered"),
        ("ALTER TABLE posts ALTER COLUMN body TO body TEXT (", "error in adding"),
    ],
)
async def test_what_libsql_refuses(store: Store, sql: str, message: str) -> None:
    before = await _table_sql(store, "posts")
    with pytest.raises(edgestore.DatabaseError) as info:
        await store.execute(sql)
    assert message in str(info.value)
    assert await _table_sql(store, "posts") == before
    assert (await store.query("SELECT count(*) FROM posts", cache=False)).values == [(2,)]


async def test_in_a_transaction_it_rolls_back_with_it(store: Store) -> None:
    before = await _table_sql(store, "posts")
    async with await store.session() as session:
        await session.execute("BEGIN")
        await session.execute("ALTER TABLE posts ALTER COLUMN body TO body TEXT DEFAULT 'b'")
        await session.execute("INSERT INTO posts(id, title, user_id) VALUES (7, 't', 1)")
        rows = await session.execute("SELECT body FROM posts WHERE id = 7")
        assert rows.values == [("b",)]
        await session.execute("ROLLBACK")
    assert await _table_sql(store, "posts") == before
    desc = await store.describe("ALTER TABLE posts ALTER COLUMN body TO body TEXT")
    assert desc.is_readonly is False
