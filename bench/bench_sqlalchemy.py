"""SQLAlchemy on edgestore; every figure is a ratio against baselines run in the same process.

1. get: ORM ``session.get(User, pk)`` (a new session per lookup, as a web request does) and
   Core ``select(...).where(pk == ?)`` on ``sqlite+edgestore_async`` vs ``sqlite+aiosqlite``
   (target >= 3x) and vs sync ``sqlite+pysqlite`` (target >= 0.7x).
2. inserts: 1,000 concurrent ORM inserts, each in its own AsyncSession and commit, on
   ``sqlite+edgestore_async`` vs ``sqlite+aiosqlite`` (target >= 5x), with the number of
   SQLite connections open on the database file sampled from /proc/self/fd throughout
   (target: edgestore never above 3).

Every engine works on its own copy of the same WAL database; the baselines get the PRAGMAs
edgestore sets (synchronous at edgestore's default, foreign keys), and the bench prints each
engine's pool, journal mode and synchronous. Beside them runs the floor (floor_driver.py): the
edgestore_async dialect over a driver that does nothing, that is SQLAlchemy's ORM and asyncio
layer alone; the ratio the floor reaches against a baseline is the most any asyncio driver can
reach. The insert section also runs the sessions in AUTOCOMMIT (each INSERT group-committed by
the writer; not a target) and prints the store's commits, group commits and connection opens.
Runs of the drivers are interleaved; medians of RUNS runs, per wall and per CPU second:

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
from typing import Any

from sqlalchemy import Connection, Engine, String, bindparam, create_engine, event, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import floor_driver  # noqa: F401  (registers sqlite+edgestore_floor://)
from edgestore.config import Settings

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


# The baselines get the PRAGMAs edgestore sets on its own connections (storage/connection.py):
# WAL (persistent in the file, set by make_db), synchronous at edgestore's default, foreign keys.
SYNCHRONOUS = Settings.__dataclass_fields__["synchronous"].default


def same_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()


async def describe_async(label: str, engine: AsyncEngine) -> None:
    # SERIALIZABLE: edgestore runs the PRAGMAs on its writer (a read outside a transaction
    # runs on a read-only reader, where synchronous is not set: it never writes).
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="SERIALIZABLE")
        await conn.begin()
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    print(
        f"   {label:16} pool {type(engine.pool).__name__:22} journal_mode={mode} synchronous={sync}"
    )


def describe_sync(label: str, engine: Engine) -> None:
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    print(
        f"   {label:16} pool {type(engine.pool).__name__:22} journal_mode={mode} synchronous={sync}"
    )


def async_engine(url: str, **options: Any) -> AsyncEngine:
    engine = create_async_engine(url, **options)
    if not url.startswith("sqlite+edgestore"):
        same_pragmas(engine.sync_engine)
    return engine


GET_LABELS = ("edgestore_async", "aiosqlite", "pysqlite", "floor")


async def bench_get(tmp: Path, base: Path) -> None:
    print(f"\n== get: {LOOKUPS} lookups by primary key, medians of {RUNS} runs (ops/s)")
    edge = async_engine(f"sqlite+edgestore_async:///{copy_db(base, tmp / 'e.db')}")
    aio = async_engine(f"sqlite+aiosqlite:///{copy_db(base, tmp / 'a.db')}")
    floor = async_engine(f"sqlite+edgestore_floor:///{tmp / 'unused.db'}")
    pys = create_engine(f"sqlite:///{copy_db(base, tmp / 'p.db')}")
    same_pragmas(pys)
    print("   (synchronous: 1 = NORMAL, 2 = FULL)")
    await describe_async("edgestore_async", edge)
    await describe_async("aiosqlite", aio)
    describe_sync("pysqlite", pys)
    print(f"   {'floor':16} the edgestore_async dialect over a driver that does nothing")
    rng = random.Random(7)
    ids = [rng.randint(1, ROWS) for _ in range(LOOKUPS)]
    figures: dict[tuple[str, str], list[Rates]] = {}
    engines = {"edgestore_async": edge, "aiosqlite": aio, "floor": floor}
    sessions = {label: AsyncSession(engine) for label, engine in engines.items()}
    conns = {label: await engine.connect() for label, engine in engines.items()}
    getters = {
        label: async_getters(engine, sessions[label], conns[label])
        for label, engine in engines.items()
    }
    pys_session, pys_conn = Session(pys), pys.connect()
    sync = sync_getters(pys, pys_session, pys_conn)
    for name in NAMES:
        for fns in getters.values():
            await time_async(fns[name], ids[:200])  # warm up: pools, statement caches
        time_sync(sync[name], ids[:200])
        for _ in range(RUNS):
            # Interleaved, so that a change in the machine's load hits every driver alike.
            for label, fns in getters.items():
                figures.setdefault((name, label), []).append(await time_async(fns[name], ids))
            figures.setdefault((name, "pysqlite"), []).append(time_sync(sync[name], ids))
    print("   floor NNx: the ratio the floor itself reaches, the most any asyncio driver can reach")
    for clock, index in (("wall", 0), ("cpu", 1)):
        print(f"-- ops per {clock} second")
        for name in NAMES:
            e, a, p, f = (
                statistics.median(r[index] for r in figures[(name, label)]) for label in GET_LABELS
            )
            print(
                f"{name:21} edgestore_async {e:7.0f}  aiosqlite {a:7.0f}  pysqlite (sync) "
                f"{p:7.0f}  floor {f:7.0f} | vs aiosqlite {e / a:5.2f}x (>= 3; floor {f / a:5.2f}x)"
                f"  vs pysqlite {e / p:4.2f}x (>= 0.7; floor {f / p:4.2f}x)"
            )
    for label in engines:
        await sessions[label].close()
        await conns[label].close()
        await engines[label].dispose()
    pys_session.close()
    pys_conn.close()
    pys.dispose()


class InsertRun:
    """One run of the insert section on one engine: rates, peak connections, store counters."""

    def __init__(self, rate: float, cpu_rate: float, peak: int, failed: int) -> None:
        self.rate, self.cpu_rate, self.peak, self.failed = rate, cpu_rate, peak, failed
        self.store: dict[str, int] = {}


async def insert_run(url: str, db: Path, **engine_options: Any) -> InsertRun:
    engine = async_engine(url, **engine_options)
    async with engine.connect() as conn:  # open the pool before the clock starts
        await conn.exec_driver_sql("SELECT 1")
        commits = [0]
        store = None
        if url.startswith("sqlite+edgestore_async"):
            driver = (await conn.get_raw_connection()).driver_connection
            store = driver.store
            before = store.pool.stats()
            store.add_commit_listener(lambda tables: commits.__setitem__(0, commits[0] + 1))

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
    ok = sum(done)
    # The sampler thread's own CPU is in cpu_used for every driver alike.
    run = InsertRun(ok / elapsed, ok / cpu_used, fds.peak, INSERTS - ok)
    if store is not None:
        after = store.pool.stats()
        run.store = {
            "commits": commits[0],
            "group commits": after.group_commits - before.group_commits,
            "grouped writes": after.grouped_writes - before.grouped_writes,
            "connections opened": after.opens - before.opens,
            "connections closed": after.closes - before.closes,
        }
    await engine.dispose()
    return run


INSERT_LABELS = {
    "edgestore_async": ("sqlite+edgestore_async", {}),
    "aiosqlite": ("sqlite+aiosqlite", {}),
    "floor": ("sqlite+edgestore_floor", {}),
    # Not a target: the same sessions with each INSERT committed on its own through the
    # writer's group commit (SQLAlchemy's AUTOCOMMIT isolation level).
    "edgestore_async AUTOCOMMIT": ("sqlite+edgestore_async", {"isolation_level": "AUTOCOMMIT"}),
}


async def bench_inserts(tmp: Path, base: Path) -> None:
    print(
        f"\n== inserts: {INSERTS} concurrent ORM inserts, a session + commit each "
        f"(committed inserts/s, medians of {RUNS} runs)"
    )
    runs: dict[str, list[InsertRun]] = {label: [] for label in INSERT_LABELS}
    for run in range(RUNS):
        for label, (scheme, options) in INSERT_LABELS.items():
            db = copy_db(base, tmp / f"ins_{run}_{len(runs[label])}_{scheme[7:]}.db")
            runs[label].append(await insert_run(f"{scheme}:///{db}", db, **options))
    wall = {label: statistics.median(r.rate for r in rs) for label, rs in runs.items()}
    cpu = {label: statistics.median(r.cpu_rate for r in rs) for label, rs in runs.items()}
    for clock, rates in (("wall", wall), ("CPU", cpu)):
        e, a, f = rates["edgestore_async"], rates["aiosqlite"], rates["floor"]
        print(
            f"per {clock} second: edgestore_async {e:6.0f}  aiosqlite {a:6.0f}  floor {f:6.0f}"
            f"  AUTOCOMMIT {rates['edgestore_async AUTOCOMMIT']:6.0f}"
            f" | vs aiosqlite {e / a:5.2f}x (>= 5; the floor allows {f / a:5.2f}x)"
        )
    peaks = {label: max(r.peak for r in rs) for label, rs in runs.items()}
    failed = {label: sum(r.failed for r in rs) for label, rs in runs.items()}
    print(
        f"SQLite connections open at most: edgestore_async {peaks['edgestore_async']} (<= 3), "
        f"AUTOCOMMIT {peaks['edgestore_async AUTOCOMMIT']}, aiosqlite {peaks['aiosqlite']}\n"
        "failed sessions (all runs): " + ", ".join(f"{label} {n}" for label, n in failed.items())
    )
    for label in ("edgestore_async", "edgestore_async AUTOCOMMIT"):
        counters = runs[label][-1].store
        print(
            f"store counters, last run, {label}: "
            + ", ".join(f"{k} {v}" for k, v in counters.items())
        )
    print(
        "floor: the edgestore_async dialect over a driver that does nothing (SQLAlchemy's ORM "
        "and asyncio layer alone)"
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
