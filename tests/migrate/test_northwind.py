"""Northwind (a real Postgres dump) end to end through the CLI, plus spot checks of values."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import apsw
import psycopg
from click.testing import CliRunner

from edgestore.cli.main import main


def _cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["migrate", *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_run_validates_clean_and_values_are_exact(northwind_dsn: str, tmp_path: Path) -> None:
    target = tmp_path / "northwind.db"
    report_path = tmp_path / "report.json"
    code, out, err = _cli(
        "run", "--from", northwind_dsn, "--to", str(target), "--report", str(report_path)
    )
    assert code == 0, err
    assert "validation: OK" in out
    report = json.loads(report_path.read_text())
    assert report["ok"] is True
    counts = {t["name"]: t["target_rows"] for t in report["tables"]}
    assert counts["orders"] == 830
    assert counts["order_details"] == 2155
    assert len(counts) == 14
    assert not (tmp_path / "northwind.db.snapshot").exists()  # removed after success
    assert not (tmp_path / "northwind.db.partial").exists()

    db = apsw.Connection(str(target))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with psycopg.connect(northwind_dsn) as pg:
        # bytea byte-identical (and empty bytea stays b'', not NULL)
        pg_pics = dict(pg.execute("SELECT category_id, picture FROM categories").fetchall())
        sq_pics = dict(db.execute("SELECT category_id, picture FROM categories"))
        assert {k: bytes(v) for k, v in pg_pics.items()} == sq_pics
        pg_photos = dict(pg.execute("SELECT employee_id, photo FROM employees").fetchall())
        assert {k: bytes(v) for k, v in pg_photos.items()} == dict(
            db.execute("SELECT employee_id, photo FROM employees")
        )
        # real (float4) prices: the decimal Postgres shows, and the identical float4 bits
        pg_prices = dict(pg.execute("SELECT product_id, unit_price FROM products").fetchall())
        sq_prices = dict(db.execute("SELECT product_id, unit_price FROM products"))
        assert sq_prices.keys() == pg_prices.keys()
        for pid, value in pg_prices.items():
            assert struct.pack("<f", sq_prices[pid]) == struct.pack("<f", value)
        assert sq_prices[1] == 18.0
        assert db.execute("SELECT unit_price FROM products WHERE product_id = 7").fetchone()[
            0
        ] == float(
            pg.execute("SELECT unit_price::text FROM products WHERE product_id = 7").fetchone()[0]
        )
        # dates as ISO text, discount real exact
        assert db.execute("SELECT order_date FROM orders WHERE order_id = 10248").fetchone()[
            0
        ] == str(pg.execute("SELECT order_date FROM orders WHERE order_id = 10248").fetchone()[0])
    # keys and foreign keys (composite primary key included)
    pk = [r[1] for r in db.execute("PRAGMA table_info(order_details)") if r[5]]
    assert pk == ["order_id", "product_id"]
    fks = {(r[2], r[3], r[4]) for r in db.execute("PRAGMA foreign_key_list(order_details)")}
    assert ("orders", "order_id", "order_id") in fks
    assert ("products", "product_id", "product_id") in fks
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()

    # validate against the live source, through the CLI, exit 0
    code, out, _ = _cli("validate", "--from", northwind_dsn, "--to", str(target))
    assert code == 0
    assert "validation: OK" in out


def test_plan_text_json_and_ddl(northwind_dsn: str, tmp_path: Path) -> None:
    code, out, _ = _cli("plan", "--from", northwind_dsn)
    assert code == 0
    assert "table orders" in out
    assert "unit_price" in out
    assert "float4_widened" in out
    code, out, _ = _cli(
        "plan", "--from", northwind_dsn, "--format", "json", "--write-ddl", str(tmp_path)
    )
    assert code == 0
    plan = json.loads(out)
    assert {t["name"] for t in plan["tables"]} >= {"orders", "customers", "products"}
    ddl = (tmp_path / "migrate-public.sql").read_text()
    db = apsw.Connection(":memory:")
    db.execute(ddl)  # the reviewed DDL is what import runs, and it applies
    assert db.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").fetchone()[0] == 14
