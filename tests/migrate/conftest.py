"""A real Postgres for the migration tests, started by the suite itself (pgserver from PyPI).

One server per test session; each test gets fresh databases from ``make_db``. Only loopback
and a Unix socket are used.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
HERE = Path(__file__).resolve().parent
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    # Not under pytest's basetemp: that tree is 0700 and re-chmodded by every pytest session
    # on the machine, while Postgres runs as a separate system user when we are root.
    pgdata = Path(tempfile.mkdtemp(prefix="edgestore-pg-"))
    pgdata.chmod(0o755)
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on CI containers; harmless here
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    yield server
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server.cleanup()  # stops the server and removes pgdata
    shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="session")
def admin_dsn(pg_server: Any) -> str:
    return str(pg_server.get_uri())


@pytest.fixture(scope="session")
def make_db(pg_server: Any, admin_dsn: str) -> Callable[..., str]:
    """make_db(sql_text=None, *, encoding=None) -> DSN of a new database."""

    def make(sql: str | None = None, *, encoding: str | None = None) -> str:
        name = f"t{next(_counter)}"
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            extra = ""
            if encoding:
                extra = f" ENCODING '{encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
            conn.execute(f"CREATE DATABASE {name}{extra}")
        dsn = str(pg_server.get_uri(name))
        if sql:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql)
        return dsn

    return make


@pytest.fixture(scope="session")
def northwind_dsn(make_db: Callable[..., str]) -> str:
    path = DATA / "northwind.sql"
    if not path.exists():
        pytest.fail(f"{path} is missing: CI checks out shared/ beside the repository")
    return make_db(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def all_types_dsn(make_db: Callable[..., str]) -> str:
    return make_db((HERE / "all_types.sql").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def shop_dsn(make_db: Callable[..., str]) -> str:
    """An application-shaped database: partitions, domains, enums, sequences, views, triggers."""
    return make_db((HERE / "shop.sql").read_text(encoding="utf-8"))
