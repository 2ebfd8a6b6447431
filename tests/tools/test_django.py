"""Django 5.2 with django-libsql-backend (``django_libsql``, Hrana over HTTP) and django-libsql
(``libsql.db.backends.libsql``, Hrana over WebSocket through libsql-client) against
``edgestore serve``. The program is djangoproj/run.py, run in its own process per backend."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.server import EdgestoreServer

from .conftest import run_tool, schema_dir, table_digests, user_tables

_EXTRA = "the compat extra is not installed: pip install -e '.[compat]'"
pytest.importorskip("django", reason=_EXTRA)
pytest.importorskip("django_libsql", reason=_EXTRA)
pytest.importorskip("libsql.db.backends.libsql", reason=_EXTRA)

REPO = Path(__file__).resolve().parents[2]
HTTP_BACKEND = "django_libsql"
WS_BACKEND = "libsql.db.backends.libsql"
BIG = 2**62 + 11


def run_django(engine: str, url: str, target: str) -> tuple[int, str]:
    return run_tool(
        [sys.executable, "-m", "tests.tools.djangoproj.run"],
        cwd=REPO,
        env={"DJANGO_DB_ENGINE": engine, "DJANGO_DB_NAME": url, "DJANGO_TARGET": target},
        timeout=180,
    )


def report_of(code: int, output: str) -> dict[str, object]:
    assert code == 0, output
    report: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return report


COMMON = {
    "counts_after_migrate": [3, 3],
    "founded": BIG,
    "copies": -BIG,
    "price": 9.5,
    "float": 0.1 + 0.2,
    "join": [["acme", "one", 2], ["acme", "two", 0], ["nil", "three", 1]],
    "copies_updated": -BIG + 1,
    "unique": "IntegrityError",
    # The blob and the float were stored as such (django-libsql-backend sends them in its own
    # spelling, {"type": "blob", "value": ...} and {"type": "real", ...}, which edgestore accepts).
    "stored": [["", "null", "real"], ["000102FEFF", "blob", "null"]],
    "tables": ["shop_book", "shop_publisher", "shop_review"],
    "tables_at_zero": [],
    "tables_again": ["shop_book", "shop_publisher", "shop_review"],
}


def test_django_libsql_websocket(server: EdgestoreServer) -> None:
    """django-libsql connects with ``PRAGMA foreign_keys = ON`` (it used to fail at connect)."""
    ws = server.url.replace("http", "ws", 1)
    report = report_of(*run_django(WS_BACKEND, ws, "0001_initial"))
    assert report == {
        **COMMON,
        "cover": "000102feff",
        "bodies": ["a", "b", "c", "committed"],
        "after_delete": [2, 3],
    }


def test_django_libsql_backend_http(server: EdgestoreServer) -> None:
    report = report_of(*run_django(HTTP_BACKEND, server.url, "0001_initial"))
    assert report == {
        **COMMON,
        # Client-side limits (the same against the libSQL server): blobs are read from "value"
        # where Hrana puts them under "base64", so they come back as None; and an INSERT ...
        # RETURNING (Django's create()) inside atomic() is sent at once, outside the buffered
        # transaction, so a rollback does not undo it.
        "cover": None,
        "bodies": ["a", "b", "c", "committed", "rolled back"],
        "after_delete": [2, 4],
    }


def test_django_table_rebuild_limits_of_the_clients(server: EdgestoreServer) -> None:
    """Client-side limits of a migration that rebuilds a referenced table (AlterField on Book),
    the same against the libSQL server: django-libsql-backend over HTTP skips Django's
    ``PRAGMA foreign_keys = OFF`` (HTTP is stateless), so the DROP of Book fails on the foreign
    keys (on by default, as on the libSQL server); django-libsql copies Django 4's schema editor,
    which reads ``Meta.index_together`` (gone since Django 5.1)."""
    code, output = run_django(HTTP_BACKEND, server.url, "0002_isbn_subtitle")
    assert code != 0
    assert "FOREIGN KEY constraint failed" in output
    # No row was lost (the DROP was refused), but over stateless HTTP every statement before it
    # committed on its own: the copy of Book stays behind.
    counts = table_digests(server.db_path, ["shop_book", "shop_review"])
    assert (counts["shop_book"][0], counts["shop_review"][0]) == (3, 3)
    assert "new__shop_book" in user_tables(server.db_path)


def test_django_libsql_rebuild_needs_django_before_5_1(tmp_path: Path) -> None:
    schemas = schema_dir(tmp_path)
    with EdgestoreServer(tmp_path / "ws.db", schemas_dir=schemas) as server:
        ws = server.url.replace("http", "ws", 1)
        code, output = run_django(WS_BACKEND, ws, "0002_isbn_subtitle")
        assert code != 0
        assert "index_together" in output
        counts = table_digests(server.db_path, ["shop_book", "shop_review"])
        assert (counts["shop_book"][0], counts["shop_review"][0]) == (3, 3)
