"""DB-API behaviour SQLAlchemy relies on, through the sync and the async dialect."""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import Engine, bindparam, create_engine, delete, insert, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

import edgestore
from edgestore.sqlalchemy import dbapi

from .conftest import Item

MAX_INT = 2**63 - 1


def test_orm_round_trip_of_every_type(engine: Engine) -> None:
    when = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456)
    with Session(engine) as session:
        session.add(
            Item(
                name="a",
                big=MAX_INT,
                data=b"\x00\xff" * 100,
                day=when.date(),
                at=when,
                clock=when.time(),
            )
        )
        session.add(Item(name="b", big=-(2**63)))
        session.commit()
    with Session(engine) as session:
        a = session.scalars(select(Item).where(Item.name == "a")).one()
        assert (a.big, a.data, a.day, a.at, a.clock) == (
            MAX_INT,
            b"\x00\xff" * 100,
            when.date(),
            when,
            when.time(),
        )
        assert session.scalar(select(Item.big).where(Item.name == "b")) == -(2**63)


def test_cursor_description_rowcount_lastrowid(engine: Engine) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("INSERT INTO items (name) VALUES (?)", ("x",))
        assert cur.lastrowid == 1
        assert cur.rowcount == 1
        assert cur.description is None
        cur.execute("INSERT INTO items (name) VALUES (:name)", {"name": "y"})
        assert cur.lastrowid == 2
        cur.executemany("UPDATE items SET big = ? WHERE id = ?", [(10, 1), (20, 2), (30, 99)])
        assert cur.rowcount == 2
        cur.execute("SELECT id, name AS label FROM items WHERE id > ? ORDER BY id", (0,))
        assert [d[0] for d in cur.description] == ["id", "label"]
        assert cur.rowcount == -1
        assert cur.fetchone() == (1, "x")
        assert cur.fetchall() == [(2, "y")]
        assert cur.fetchone() is None
        cur.execute("SELECT id FROM items WHERE id < 0")
        assert [d[0] for d in cur.description] == ["id"]
        assert cur.fetchall() == []
        raw.commit()
    finally:
        raw.close()


def test_returning_and_executemany_through_core(engine: Engine) -> None:
    with engine.begin() as conn:
        rows = conn.execute(
            insert(Item).returning(Item.id, Item.name), [{"name": "p"}, {"name": "q"}]
        ).all()
        assert [r.name for r in rows] == ["p", "q"]
        conn.execute(
            update(Item).where(Item.name == bindparam("n")).values(big=bindparam("b")),
            [{"n": "p", "b": 1}, {"n": "q", "b": 2}],
        )
        gone = conn.execute(delete(Item).where(Item.big == 2).returning(Item.name)).scalars()
        assert list(gone) == ["q"]
    with engine.connect() as conn:
        assert conn.execute(select(Item.name, Item.big)).all() == [("p", 1)]


def test_named_paramstyle(db_path: object) -> None:
    eng = create_engine(f"sqlite+edgestore:///{db_path}", paramstyle="named")
    try:
        with eng.begin() as conn:
            conn.execute(text("CREATE TABLE t (a INTEGER, b TEXT)"))
            conn.execute(
                text("INSERT INTO t VALUES (:a, :b)"), [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
            )
            assert conn.execute(text("SELECT b FROM t WHERE a = :a"), {"a": 2}).scalar() == "y"
    finally:
        eng.dispose()


def test_errors_are_dbapi_classes_carrying_the_edgestore_error(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Item).values(name="dup"))
    with pytest.raises(sa_exc.IntegrityError) as caught, engine.begin() as conn:
        conn.execute(insert(Item).values(name="dup"))
    orig = caught.value.orig
    assert isinstance(orig, dbapi.IntegrityError)
    assert orig.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"
    assert orig.sqlite_errorcode == 2067
    assert isinstance(orig.edgestore_error, edgestore.ConstraintViolation)
    with pytest.raises(sa_exc.OperationalError) as caught, engine.connect() as conn:
        conn.execute(text("SELECT * FROM nowhere"))
    assert isinstance(caught.value.orig.edgestore_error, edgestore.NoSuchTableError)  # type: ignore[union-attr]
    with pytest.raises(sa_exc.ProgrammingError), engine.connect() as conn:
        conn.exec_driver_sql("SELECT ?", (1, 2))


async def test_async_engine_orm_and_core(aengine: AsyncEngine) -> None:
    async with AsyncSession(aengine) as session:
        session.add_all([Item(name="a", big=MAX_INT, data=b"\x01"), Item(name="b")])
        await session.commit()
        item = await session.get(Item, 1)
        assert item is not None
        assert (item.name, item.big, item.data) == ("a", MAX_INT, b"\x01")
    async with aengine.connect() as conn:
        result = await conn.execute(select(Item.name).order_by(Item.id))
        assert result.scalars().all() == ["a", "b"]
    with pytest.raises(sa_exc.IntegrityError):
        async with AsyncSession(aengine) as session, session.begin():
            session.add(Item(name="a"))


def test_dbapi_module_connect_points_to_sqlalchemy() -> None:
    with pytest.raises(dbapi.NotSupportedError):
        dbapi.connect("x.db")
    assert dbapi.paramstyle == "qmark"
    assert dbapi.sqlite_version_info >= (3, 35)
