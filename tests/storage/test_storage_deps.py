"""Table dependencies from SQLite's authorizer, version counters, external writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw
import pytest

import edgestore
from edgestore.storage import Store, TableDeps

# The conftest ``store`` fixture runs these.
SCHEMA = [
    "CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT)",
    "CREATE TABLE books(id INTEGER PRIMARY KEY, author_id INT REFERENCES authors(id), title TEXT)",
    "CREATE TABLE audit(msg TEXT)",
    "CREATE TABLE archive(title TEXT)",
    "CREATE VIEW author_books AS SELECT a.name, b.title FROM authors a JOIN books b"
    " ON b.author_id = a.id",
    "CREATE TRIGGER books_audit AFTER INSERT ON books BEGIN"
    " INSERT INTO audit(msg) VALUES ('new book'); END",
]


@pytest.fixture
def library(store: Store) -> Store:
    """The conftest ``store``, which runs this module's SCHEMA."""
    return store


def deps(reads: set[str], writes: set[str] = frozenset(), *, ro: bool = True) -> TableDeps:  # type: ignore[assignment]
    return TableDeps(frozenset(reads), frozenset(writes), ro, False)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM authors", deps({"authors"})),
        ("SELECT count(*) FROM books", deps({"books"})),
        (
            "SELECT a.name, b.title FROM authors a JOIN books b ON b.author_id = a.id",
            deps({"authors", "books"}),
        ),
        (
            "SELECT name FROM authors WHERE id IN (SELECT author_id FROM books)",
            deps({"authors", "books"}),
        ),
        ("SELECT * FROM author_books", deps({"author_books", "authors", "books"})),
        (
            "WITH recent AS (SELECT * FROM books ORDER BY id DESC LIMIT 5) "
            "SELECT title, (SELECT name FROM authors WHERE id = author_id) FROM recent",
            deps({"books", "authors"}),
        ),
        (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
            "SELECT i FROM n",
            deps(set()),
        ),
        # A trigger's writes count as the statement's writes; the foreign key check reads
        # the parent table.
        (
            "INSERT INTO books(author_id, title) VALUES (1, 't')",
            deps({"authors"}, {"books", "audit"}, ro=False),
        ),
        (
            "INSERT INTO archive(title) SELECT title FROM books WHERE author_id = ?",
            deps({"books"}, {"archive"}, ro=False),
        ),
        ("UPDATE authors SET name = 'x' WHERE id = 1", deps({"authors"}, {"authors"}, ro=False)),
        ("DELETE FROM audit", deps(set(), {"audit"}, ro=False)),
    ],
)
async def test_table_deps(library: Store, sql: str, expected: TableDeps) -> None:
    assert library.deps(sql) == expected


async def test_schema_change_flag(library: Store) -> None:
    d = library.deps("CREATE TABLE extra(x)")
    assert d.schema_change
    assert not d.readonly
    assert library.deps("ALTER TABLE audit ADD COLUMN at TEXT").schema_change
    assert library.deps("DROP VIEW author_books").schema_change
    assert library.deps("CREATE INDEX books_title ON books(title)").schema_change


async def test_deps_never_run_the_statement(library: Store) -> None:
    library.deps("DELETE FROM authors")
    library.deps("INSERT INTO audit VALUES ('x')")
    assert (await library.query("SELECT count(*) FROM audit")).values == [(0,)]


async def test_deps_errors(library: Store) -> None:
    with pytest.raises(edgestore.NoSuchTableError):
        library.deps("SELECT * FROM nope")
    with pytest.raises(edgestore.SQLSyntaxError):
        library.deps("SELEC 1")


async def test_writes_through_triggers_bump_versions(library: Store) -> None:
    v_audit = library.versions.get("audit")
    v_authors = library.versions.get("authors")
    await library.execute("INSERT INTO books(author_id, title) VALUES (NULL, 't')")
    assert library.versions.get("audit") > v_audit
    assert library.versions.get("authors") == v_authors


async def test_schema_change_bumps_epoch_and_refreshes_deps(library: Store) -> None:
    events: list[frozenset[str] | None] = []
    library.versions.subscribe(events.append)
    before = library.versions.stamp(frozenset({"audit"}))
    assert library.deps("SELECT * FROM audit").reads == {"audit"}
    await library.execute("DROP TABLE audit")
    await library.execute("CREATE TABLE audit(msg TEXT, extra TEXT)")
    assert None in events
    assert library.versions.stamp(frozenset({"audit"})) != before
    res = await library.query("SELECT * FROM audit")
    assert [c.name for c in res.columns] == ["msg", "extra"]


async def test_external_writes_are_detected(library: Store, db_path: Path) -> None:
    await library.query("SELECT * FROM authors")  # a reader is open and has seen the data
    stamp = library.versions.stamp(frozenset({"authors"}))
    other = apsw.Connection(str(db_path))  # another writer, as another process would be
    other.set_busy_timeout(5000)
    other.execute("INSERT INTO authors(name) VALUES ('outsider')")
    other.close()
    res = await library.query("SELECT name FROM authors")
    assert res.values == [("outsider",)]
    assert library.versions.stamp(frozenset({"authors"})) != stamp


async def test_external_write_seen_by_the_writer(library: Store, db_path: Path) -> None:
    await library.execute("INSERT INTO authors(name) VALUES ('a')")
    epoch = library.versions.epoch
    other = apsw.Connection(str(db_path))
    other.execute("INSERT INTO audit(msg) VALUES ('outside')")
    other.close()
    await library.execute("INSERT INTO authors(name) VALUES ('b')")
    assert library.versions.epoch > epoch


async def test_invalidate(library: Store) -> None:
    v = library.versions.get("books")
    await library.invalidate("books")
    assert library.versions.get("books") > v
    epoch = library.versions.epoch
    await library.invalidate()
    assert library.versions.epoch == epoch + 1


async def test_stamp_taken_before_a_racing_write_goes_stale(library: Store) -> None:
    stamp = library.versions.stamp(frozenset({"authors"}))
    read = asyncio.create_task(library.query("SELECT * FROM authors"))
    write = asyncio.create_task(library.execute("INSERT INTO authors(name) VALUES ('x')"))
    await asyncio.gather(read, write)
    assert library.versions.stamp(frozenset({"authors"})) != stamp


async def test_refresh_external_with_an_idle_reader(library: Store, db_path: Path) -> None:
    await library.query("SELECT * FROM authors")
    epoch = library.versions.epoch
    library.refresh_external()
    assert library.versions.epoch == epoch  # nothing happened
    other = apsw.Connection(str(db_path))
    other.execute("INSERT INTO authors(name) VALUES ('outsider')")
    other.close()
    library.refresh_external()
    assert library.versions.epoch > epoch


async def test_external_write_while_no_connection_is_open(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None) as st:
        await st.execute("CREATE TABLE t(x)")
        await st.query("SELECT * FROM t")
        await st.close_idle()
        assert st.pool.stats().connections_open == 0
        epoch = st.versions.epoch
        st.refresh_external()
        assert st.versions.epoch == epoch
        other = apsw.Connection(str(db_path))
        other.execute("INSERT INTO t VALUES (1)")
        other.close()
        st.refresh_external()
        assert st.versions.epoch > epoch
        # and when a read reconnects first, it notices too
        await st.close_idle()
        epoch = st.versions.epoch
        other = apsw.Connection(str(db_path))
        other.execute("INSERT INTO t VALUES (2)")
        other.close()
        assert (await st.query("SELECT count(*) FROM t")).values == [(2,)]
        assert st.versions.epoch > epoch


async def test_foreign_key_cascades_count_as_writes(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None) as st:
        await st.execute("CREATE TABLE parent(id INTEGER PRIMARY KEY)")
        await st.execute(
            "CREATE TABLE child(p INT REFERENCES parent(id) ON DELETE CASCADE, v TEXT)"
        )
        assert st.deps("DELETE FROM parent WHERE id = 1").writes == {"parent", "child"}
