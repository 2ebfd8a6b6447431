"""SQLAlchemy on edgestore; every figure is a ratio against baselines run in the same process.

1. get: ORM ``session.get(User, pk)`` (a new session per lookup, as a web request does) and
   Core ``select(...).where(pk == ?)`` on ``sqlite+edgestore_async`` vs ``sqlite+aiosqlite``
   (target >= 3x) and vs sync ``sqlite+pysqlite`` (target >= 0.7x).
2. inserts: 1,000 concurrent ORM inserts, each in its own AsyncSession and commit, on
   ``sqlite+edgestore_async`` vs ``sqlite+aiosqlite`` (target >= 5x), with the number of
   SQLite connections open on the database file sampled from /proc/self/fd throughout
   (target: edgestore never above 3).

Every engine works on its own copy of the same WAL database. Medians of RUNS runs:

    .venv/bin/python bench/bench_sqlalchemy.py [get] [inserts]
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, String, bindparam, create_engine, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

RUNS = 5
LOOKUPS = 3_000
ROWS = 10_000
INSERTS = 1_000


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(100))
    score: Mapped[int]


def make_db(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, "
        "email VARCHAR(100) NOT NULL, score INTEGER NOT NULL)"
    )
    con.executemany(
        "INSERT INTO users VALUES (?, ?, ?, ?)",
        [(i, f"user{i}", f"user{i}@example.com", i % 100) for i in range(1, ROWS + 1)],
    )
    con.commit()
    con.close()


def copy_db(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


class FdSampler:
    """Counts this process's open descriptors on one database file, every millisecond."""

    def __init__(self, db: Path) -> None:
        self.db = str(db.resolve())
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == self.db:
                    n += 1
            except OSError:
                pass
        return n

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count())
            time.sleep(0.001)

    def __enter__(self) -> FdSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.count())


# Two clocks: wall time, and this process's CPU time (all its threads). On a machine shared by
# more runnable threads than cores, the kernel gives a process CPU per thread, so a driver that
# works on a thread of its own (aiosqlite) gets a larger share of wall time than one that works
# on the event loop's thread; ops per CPU second is what a driver costs either way.
Rates = tuple[float, float]


async def time_async(fn: Callable[[int], Awaitable[object]], ids: list[int]) -> Rates:
    start, cpu = time.perf_counter(), time.process_time()
    for i in ids:
        await fn(i)
    return _rates(len(ids), start, cpu)


def time_sync(fn: Callable[[int], object], ids: list[int]) -> Rates:
    start, cpu = time.perf_counter(), time.process_time()
    for i in ids:
        fn(i)
    return _rates(len(ids), start, cpu)


def _rates(n: int, start: float, cpu: float) -> Rates:
    return n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)


def async_getters(
    engine: AsyncEngine, session: AsyncSession, conn: AsyncConnection
) -> dict[str, Callable[[int], Awaitable[object]]]:
    stmt = select(User.id, User.name, User.email, User.score).where(User.id == bindparam("pk"))

    async def orm_get(pk: int) -> object:
        async with AsyncSession(engine) as session:
            user = await session.get(User, pk)
            assert user is not None
            return user.name

    async def core_select(pk: int) -> object:
        async with engine.connect() as conn:
            row = (await conn.execute(stmt, {"pk": pk})).first()
            assert row is not None
            return row

    async def orm_get_one_session(pk: int) -> object:
        user = await session.get(User, pk, populate_existing=True)
        assert user is not None
        return user.name

    async def core_select_one_connection(pk: int) -> object:
        row = (await conn.execute(stmt, {"pk": pk})).first()
        assert row is not None
        return row

    return {
        "orm get": orm_get,
        "core select": core_select,
        "orm get, one session": orm_get_one_session,
        "core, one connection": core_select_one_connection,
    }


def sync_getters(
    engine: Engine, session: Session, conn: Connection
) -> dict[str, Callable[[int], object]]:
    stmt = select(User.id, User.name, User.email, User.score).where(User.id == bindparam("pk"))

    def orm_get(pk: int) -> object:
        with Session(engine) as session:
            user = session.get(User, pk)
            assert user is not None
            return user.name

    def core_select(pk: int) -> object:
        with engine.connect() as conn:
            row = conn.execute(stmt, {"pk": pk}).first()
            assert row is not None
            return row

    def orm_get_one_session(pk: int) -> object:
        user = session.get(User, pk, populate_existing=True)
        assert user is not None
        return user.name

    def core_select_one_connection(pk: int) -> object:
        row = conn.execute(stmt, {"pk": pk}).first()
        assert row is not None
        return row

    return {
        "orm get": orm_get,
        "core select": core_select,
        "orm get, one session": orm_get_one_session,
        "core, one connection": core_select_one_connection,
    }


NAMES = ("orm get", "core select", "orm get, one session", "core, one connection")


async def bench_get(tmp: Path, base: Path) -> None:
    print(f"\n== get: {LOOKUPS} lookups by primary key, medians of {RUNS} runs (ops/s)")
    edge = create_async_engine(f"sqlite+edgestore_async:///{copy_db(base, tmp / 'e.db')}")
    aio = create_async_engine(f"sqlite+aiosqlite:///{copy_db(base, tmp / 'a.db')}")
    pys = create_engine(f"sqlite:///{copy_db(base, tmp / 'p.db')}")
    rng = random.Random(7)
    ids = [rng.randint(1, ROWS) for _ in range(LOOKUPS)]
    figures: dict[tuple[str, str], list[Rates]] = {}
    edge_session, aio_session, pys_session = AsyncSession(edge), AsyncSession(aio), Session(pys)
    edge_conn, aio_conn, pys_conn = await edge.connect(), await aio.connect(), pys.connect()
    getters = {
        "edgestore_async": async_getters(edge, edge_session, edge_conn),
        "aiosqlite": async_getters(aio, aio_session, aio_conn),
    }
    sync = sync_getters(pys, pys_session, pys_conn)
    for name in NAMES:
        for fn in (getters["edgestore_async"][name], getters["aiosqlite"][name]):
            await time_async(fn, ids[:200])  # warm up: pools, statement caches
        time_sync(sync[name], ids[:200])
        for _ in range(RUNS):
            for label, fns in getters.items():
                figures.setdefault((name, label), []).append(await time_async(fns[name], ids))
            figures.setdefault((name, "pysqlite"), []).append(time_sync(sync[name], ids))
    for clock, index in (("wall", 0), ("cpu", 1)):
        print(f"-- ops per {clock} second")
        for name in NAMES:
            e, a, p = (
                statistics.median(r[index] for r in figures[(name, label)])
                for label in ("edgestore_async", "aiosqlite", "pysqlite")
            )
            print(
                f"{name:21} edgestore_async {e:8.0f}  aiosqlite {a:8.0f}  pysqlite (sync) "
                f"{p:8.0f}  | vs aiosqlite {e / a:5.2f}x (>= 3)  vs pysqlite {e / p:5.2f}x (>= 0.7)"
            )
    for closing in (edge_session, aio_session, edge_conn, aio_conn):
        await closing.close()
    pys_session.close()
    pys_conn.close()
    await edge.dispose()
    await aio.dispose()
    pys.dispose()


async def insert_run(url: str, db: Path) -> tuple[float, float, int, int]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:  # open the pool before the clock starts
        await conn.exec_driver_sql("SELECT 1")

    async def one(i: int) -> bool:
        try:
            async with AsyncSession(engine) as session:
                session.add(User(name=f"new{i}", email=f"new{i}@example.com", score=i % 7))
                await session.commit()
        except Exception:  # e.g. aiosqlite's "database is locked" after its busy timeout
            return False
        return True

    with FdSampler(db) as fds:
        start, cpu = time.perf_counter(), time.process_time()
        done = await asyncio.gather(*(one(i) for i in range(INSERTS)))
        elapsed, cpu_used = time.perf_counter() - start, time.process_time() - cpu
    await engine.dispose()
    ok = sum(done)
    # The sampler thread's own CPU is in cpu_used for both drivers alike.
    return ok / elapsed, ok / cpu_used, fds.peak, INSERTS - ok


def orm_floor() -> float:
    """SQLAlchemy's own price: the same ORM sessions, one by one, on in-memory pysqlite."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    start = time.perf_counter()
    for i in range(INSERTS):
        with Session(engine) as session:
            session.add(User(name=f"new{i}", email=f"new{i}@example.com", score=i % 7))
            session.commit()
    rate = INSERTS / (time.perf_counter() - start)
    engine.dispose()
    return rate


async def bench_inserts(tmp: Path, base: Path) -> None:
    print(
        f"\n== inserts: {INSERTS} concurrent ORM inserts, a session + commit each "
        "(committed inserts/s)"
    )
    figures: dict[str, list[float]] = {"edgestore_async": [], "aiosqlite": [], "floor": []}
    cpu_figures: dict[str, list[float]] = {"edgestore_async": [], "aiosqlite": []}
    peaks: dict[str, int] = {"edgestore_async": 0, "aiosqlite": 0}
    failed: dict[str, int] = {"edgestore_async": 0, "aiosqlite": 0}
    for run in range(RUNS):
        for label, scheme in (
            ("edgestore_async", "sqlite+edgestore_async"),
            ("aiosqlite", "sqlite+aiosqlite"),
        ):
            db = copy_db(base, tmp / f"ins_{label}_{run}.db")
            rate, cpu_rate, peak, failures = await insert_run(f"{scheme}:///{db}", db)
            figures[label].append(rate)
            cpu_figures[label].append(cpu_rate)
            failed[label] += failures
            peaks[label] = max(peaks[label], peak)
        figures["floor"].append(orm_floor())
    e = statistics.median(figures["edgestore_async"])
    a = statistics.median(figures["aiosqlite"])
    f = statistics.median(figures["floor"])
    ec = statistics.median(cpu_figures["edgestore_async"])
    ac = statistics.median(cpu_figures["aiosqlite"])
    print(
        f"per wall second: edgestore_async {e:8.0f}  aiosqlite {a:8.0f}  | {e / a:5.2f}x (>= 5)\n"
        f"per CPU second:  edgestore_async {ec:8.0f}  aiosqlite {ac:8.0f}  | {ec / ac:5.2f}x\n"
        f"SQLite connections open at most: edgestore_async {peaks['edgestore_async']} (<= 3)"
        f", aiosqlite {peaks['aiosqlite']}\n"
        f"failed sessions (all runs): edgestore_async {failed['edgestore_async']}, "
        f"aiosqlite {failed['aiosqlite']}\n"
        f"SQLAlchemy alone (same sessions, sync, in-memory pysqlite): {f:8.0f}/s, so no driver "
        f"can beat aiosqlite by more than {f / a:5.2f}x here"
    )


async def main(sections: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = tmp / "base.db"
        make_db(base)
        if not sections or "get" in sections:
            await bench_get(tmp, base)
        if not sections or "inserts" in sections:
            await bench_inserts(tmp, base)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
