"""PRAGMA foreign_keys / defer_foreign_keys per session, as the libSQL server has them per
stream (storage/session_settings.py), through the library."""

from __future__ import annotations

import pytest

import edgestore
from edgestore.storage import Session, Store

# The conftest ``store`` fixture runs these.
SCHEMA = [
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
    "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE)",
    "CREATE INDEX posts_user ON posts(user_id)",
    "INSERT INTO users VALUES (1, 'ann'), (2, 'bob')",
    "INSERT INTO posts VALUES (1, 'a', 1), (2, 'b', 1), (3, 'c', 2)",
]

# What drizzle-kit sends (through @libsql/client's migrate()) to change the foreign key of
# `posts`: the table is rebuilt, and the DROP TABLE of the old `users`-referencing table is a
# DROP of a parent of nobody; here `users`, a parent, is rebuilt the same way.
DRIZZLE_REBUILD_PARENT = [
    "PRAGMA foreign_keys=off",
    "BEGIN",
    "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY NOT NULL, `name` text NOT NULL, "
    "`email` text)",
    "INSERT INTO `__new_users`(`id`, `name`) SELECT `id`, `name` FROM `users`",
    "DROP TABLE `users`",
    "ALTER TABLE `__new_users` RENAME TO `users`",
    "CREATE INDEX `users_name` ON `users` (`name`)",
    "COMMIT",
    "PRAGMA foreign_keys=on",
]


async def _count(store: Store, table: str) -> int:
    value = (await store.query(f"SELECT count(*) FROM {table}", cache=False)).values[0][0]
    assert isinstance(value, int)
    return value


async def _writer_enforces_foreign_keys(store: Store) -> None:
    # The connection went back with the server's default: a DELETE cascades again.
    await store.execute("INSERT INTO users(id, name) VALUES (99, 'tmp')")
    await store.execute("INSERT INTO posts VALUES (99, 'tmp', 99)")
    await store.execute("DELETE FROM users WHERE id = 99")
    assert await _count(store, "posts WHERE id = 99") == 0
    with pytest.raises(edgestore.DatabaseError):
        await store.execute("INSERT INTO posts VALUES (98, 'orphan', 12345)")


async def test_drizzle_rebuild_of_a_parent_keeps_every_row(store: Store) -> None:
    async with await store.session() as session:
        for sql in DRIZZLE_REBUILD_PARENT:
            await session.execute(sql)
    assert await _count(store, "posts") == 3
    assert await _count(store, "users") == 2
    assert (await store.query("PRAGMA foreign_key_check", cache=False)).values == []
    await _writer_enforces_foreign_keys(store)


async def test_the_same_rebuild_with_foreign_keys_on_cascades(store: Store) -> None:
    # The control: without the PRAGMA (the old behaviour, which refused it) the DROP TABLE
    # of the parent deletes every child row.
    async with await store.session() as session:
        for sql in DRIZZLE_REBUILD_PARENT:
            if not sql.startswith("PRAGMA"):
                await session.execute(sql)
    assert await _count(store, "posts") == 0


async def test_foreign_keys_off_inside_a_transaction_does_nothing(store: Store) -> None:
    # SQLite: "This pragma is a no-op within a transaction". The setting is not kept either.
    async with await store.session() as session:
        await session.execute("BEGIN")
        await session.execute("PRAGMA foreign_keys = OFF")
        assert (await session.execute("PRAGMA foreign_keys")).values == [(1,)]
        await session.execute("DELETE FROM users WHERE id = 2")
        await session.execute("COMMIT")
        assert (await session.execute("PRAGMA foreign_keys")).values == [(1,)]
    assert await _count(store, "posts WHERE user_id = 2") == 0


async def test_twelve_step_alter_reports_violations_before_commit(store: Store) -> None:
    # SQLite's documented procedure: foreign keys off, rebuild, foreign_key_check, commit.
    async with await store.session() as session:
        await session.execute("PRAGMA foreign_keys = OFF")
        await session.execute("BEGIN")
        await session.execute("CREATE TABLE new_users(id INTEGER PRIMARY KEY, name TEXT)")
        await session.execute("INSERT INTO new_users SELECT * FROM users WHERE id = 1")
        await session.execute("DROP TABLE users")
        await session.execute("ALTER TABLE new_users RENAME TO users")
        check = await session.execute("PRAGMA foreign_key_check")
        assert [(r[0], r[2]) for r in check.values] == [("posts", "users")]
        await session.execute("ROLLBACK")
        await session.execute("PRAGMA foreign_keys = ON")
    assert await _count(store, "users") == 2
    assert await _count(store, "posts") == 3
    await _writer_enforces_foreign_keys(store)


async def test_the_setting_lasts_for_the_session_and_only_there(store: Store) -> None:
    other = await store.session()
    async with await store.session() as session:
        await session.execute("PRAGMA foreign_keys = OFF")
        assert (await session.execute("PRAGMA foreign_keys")).values == [(0,)]
        assert (await other.execute("PRAGMA foreign_keys")).values == [(1,)]
        # Autocommit writes of this session run without foreign keys ...
        await session.execute("DELETE FROM users WHERE id = 2")
        await session.execute("INSERT INTO posts VALUES (10, 'orphan', 777)")
        # ... while everybody else's still cascade and are checked, in between.
        await _writer_enforces_foreign_keys(store)
        await other.execute("BEGIN")
        with pytest.raises(edgestore.DatabaseError):
            await other.execute("INSERT INTO posts VALUES (11, 'orphan', 778)")
        await other.execute("ROLLBACK")
        # A transaction of this session takes the setting along.
        await session.execute("BEGIN")
        assert (await session.execute("PRAGMA foreign_keys")).values == [(0,)]
        await session.execute("INSERT INTO posts VALUES (12, 'orphan', 779)")
        await session.execute("COMMIT")
        await session.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(edgestore.DatabaseError):
            await session.execute("INSERT INTO posts VALUES (13, 'orphan', 780)")
    await other.close()
    assert await _count(store, "posts WHERE user_id = 2") == 1  # no cascade happened
    await _writer_enforces_foreign_keys(store)


async def test_defer_foreign_keys_until_commit(store: Store) -> None:
    async with await store.session() as session:
        await session.execute("BEGIN")
        await session.execute("PRAGMA defer_foreign_keys = ON")
        assert (await session.execute("PRAGMA defer_foreign_keys")).values == [(1,)]
        await session.execute("INSERT INTO posts VALUES (20, 'early', 50)")
        await session.execute("INSERT INTO users(id, name) VALUES (50, 'late')")
        await session.execute("COMMIT")
        assert (await session.execute("PRAGMA defer_foreign_keys")).values == [(0,)]
        # Set outside a transaction, it holds for the next transaction (SQLite clears it
        # when that one ends).
        await session.execute("PRAGMA defer_foreign_keys = ON")
        await session.execute("BEGIN")
        await session.execute("INSERT INTO posts VALUES (21, 'early', 51)")
        await session.execute("INSERT INTO users(id, name) VALUES (51, 'late')")
        await session.execute("COMMIT")
        await session.execute("BEGIN")
        with pytest.raises(edgestore.DatabaseError):
            await session.execute("INSERT INTO posts VALUES (22, 'early', 52)")
        await session.execute("ROLLBACK")
    assert await _count(store, "posts WHERE id IN (20, 21)") == 2
    # A deferred violation left at COMMIT fails it, and the connection is clean afterwards.
    async with await store.session() as session:
        await session.execute("BEGIN")
        await session.execute("PRAGMA defer_foreign_keys = ON")
        await session.execute("INSERT INTO posts VALUES (23, 'never', 53)")
        with pytest.raises(edgestore.DatabaseError):
            await session.execute("COMMIT")
    await _writer_enforces_foreign_keys(store)


async def test_an_atomic_batch_applies_its_leading_settings(store: Store) -> None:
    await store.batch(
        [
            ("PRAGMA foreign_keys=off", None),
            ("CREATE TABLE __new_users(id INTEGER PRIMARY KEY, name TEXT NOT NULL)", None),
            ("INSERT INTO __new_users SELECT id, name FROM users", None),
            ("DROP TABLE users", None),
            ("ALTER TABLE __new_users RENAME TO users", None),
            ("PRAGMA foreign_keys=on", None),
        ]
    )
    assert await _count(store, "posts") == 3
    await _writer_enforces_foreign_keys(store)
    with pytest.raises(edgestore.DatabaseError):
        # All or nothing: a failing statement rolls the whole batch back.
        await store.batch(
            [
                ("PRAGMA foreign_keys=off", None),
                ("DELETE FROM users", None),
                ("INSERT INTO nowhere VALUES (1)", None),
            ]
        )
    assert await _count(store, "users") == 2


async def test_alone_only_the_default_is_accepted(store: Store) -> None:
    await store.execute("PRAGMA foreign_keys = ON")
    await store.execute("PRAGMA defer_foreign_keys = OFF")
    with pytest.raises(edgestore.InvalidRequest) as info:
        await store.execute("PRAGMA foreign_keys = OFF")
    assert "session" in str(info.value)
    async with store.transaction() as tx:
        await tx.execute("PRAGMA defer_foreign_keys = ON")
        await tx.execute("INSERT INTO posts VALUES (30, 'early', 60)")
        await tx.execute("INSERT INTO users(id, name) VALUES (60, 'late')")
    await _writer_enforces_foreign_keys(store)


async def test_a_closed_session_gives_the_default_back(store: Store) -> None:
    session: Session = await store.session()
    await session.execute("PRAGMA foreign_keys = OFF")
    await session.execute("BEGIN")
    await session.execute("DELETE FROM users WHERE id = 1")
    await session.close()  # rolled back, connection restored
    assert await _count(store, "posts") == 3
    await _writer_enforces_foreign_keys(store)


async def test_an_atomic_batch_can_use_what_it_creates(store: Store) -> None:
    results = await store.batch(
        [
            ("CREATE TABLE tags(id INTEGER PRIMARY KEY, post_id INT REFERENCES posts(id))", None),
            ("INSERT INTO tags(post_id) VALUES (1), (2)", None),
            ("ALTER TABLE tags ADD COLUMN label TEXT", None),
            ("UPDATE tags SET label = 'x'", None),
            ("SELECT count(*) FROM tags WHERE label = 'x'", None),
        ]
    )
    assert results[-1].values == [(2,)]
    with pytest.raises(edgestore.DatabaseError) as info:
        await store.batch(
            [
                ("CREATE TABLE more(x)", None),
                ("INSERT INTO more VALUES (1)", None),
                ("INSERT INTO posts VALUES (50, 'orphan', 4040)", None),
            ]
        )
    assert "statement 3 of the batch" in str(info.value)
    assert await _count(store, "sqlite_schema WHERE name = 'more'") == 0
