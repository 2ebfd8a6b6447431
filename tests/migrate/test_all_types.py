"""The fixture schema with every type and constraint the migration supports, with edge values."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import apsw
import pytest

from edgestore.errors import SourceError
from edgestore.migrate import export_snapshot, import_snapshot, read_plan, run, validate


@pytest.fixture(scope="module")
def migrated(all_types_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("all_types") / "all.db"
    report = run(all_types_dsn, target, validate_source=True)
    assert report["ok"], json.dumps(report, indent=1)
    assert report["live_source"]["ok"]
    return target


def _row(db: apsw.Connection, sql: str, *params: Any) -> tuple[Any, ...]:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def test_plan_flags_every_lossy_or_risky_conversion(all_types_dsn: str) -> None:
    plan = read_plan(all_types_dsn)
    flags = {(f.code, f.object) for t in plan.tables for f in t.flags}
    codes = {c for c, _ in flags}
    for code in (
        "array_as_json",
        "enum_order_text",
        "tsvector_as_text",
        "money_as_text",
        "composite_as_json",
        "range_as_json",
        "generated_materialised",
        "check_dropped",
        "index_dropped",
        "partitioned_merged",
        "no_primary_key",
    ):
        assert code in codes, code
    assert ("check_dropped", "everything.num_positive") in flags  # numeric is text in SQLite
    assert ("index_dropped", "everything.everything_tsv") in flags  # gin
    assert ("no_primary_key", "no_key") in flags
    cols = {c.name: c for c in plan.table("everything").columns}
    assert "numeric_as_text" in cols["num"].flags
    assert "float_nan_as_text" in cols["r8"].flags
    assert "timestamptz_utc" in cols["tstz"].flags
    assert cols["pos"].sqlite_type == "INTEGER"
    assert "domain_base_type" in cols["pos"].flags
    kinds = {(n["kind"], n["name"]) for n in plan.not_moved}
    # a view SQLite can run is a candidate, kept after import only if its rows match
    assert "happy_things" in {v.name for v in plan.views} | {n for _, n in kinds}
    assert ("function", "add_one(x integer)") in kinds
    assert "measurements_2023" not in {t.name for t in plan.tables}  # partitions merged


def test_values_arrive_exactly(migrated: Path) -> None:
    db = apsw.Connection(str(migrated))
    r = dict(
        zip(
            [d[0] for d in db.execute("SELECT * FROM everything WHERE id = 1").getdescription()],
            _row(db, "SELECT * FROM everything WHERE id = 1"),
            strict=True,
        )
    )
    assert r["i2"] == -32768
    assert r["i8"] == -(2**63)
    assert r["num"] == "12345678901234.123456"  # exact, scale kept
    assert r["num_free"] == "123456789012345678901234567890.123456789012345678901234567890"
    assert r["price"] == 19.99  # numeric(10,2): a double holds every such value exactly
    assert r["r4"] == 21.35
    assert r["r8"] == 0.1
    assert r["flag"] == 1
    assert r["b"] == b"\x00\xff\x10"
    assert r["u"] == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert r["j"] == '{"b": 1,  "a": [1, 2.50]}'  # json: the text as written
    assert json.loads(r["jb"]) == {"a": [1, 2.5], "b": 1, "c": None}
    assert r["d"] == "2024-02-29"
    assert r["tm"] == "23:59:59.999999"
    assert r["tstz"] == "2024-06-01 10:34:56.789+00:00"  # UTC
    assert r["iv"] == "P1Y2M3DT4H5M6.5S"
    assert json.loads(r["int_arr"]) == [1, 2, None]
    assert json.loads(r["text_arr"]) == [["a", "b"], ["c", "d"]]
    assert r["m"] == "happy"
    assert r["pos"] == 1
    assert r["ip"] == "192.168.0.1/24"
    assert r["mac"] == "08:00:2b:01:02:03"
    assert r["cash"] == "12.34"
    assert r["bits"] == "1010"
    assert json.loads(r["comp"]) == {"a": 1, "b": "x"}
    assert json.loads(r["rng"]) == {"lower": 1, "upper": 10, "bounds": "[)"}
    assert r["gen_total"] == 39.98  # unconstrained numeric, every value fits a double
    r2 = _row(db, "SELECT r4, r8, t, b, ch, d, ts, rng FROM everything WHERE id = 2")
    assert r2[0] == "NaN"
    assert r2[1] == math.inf
    assert r2[2] == "tab\there\nnewline 'quote' \\ backslash ünïcødé 🎉"
    assert r2[3] == b""
    assert r2[4] == "xy  "
    assert r2[5] == "infinity"
    assert r2[6] == "-infinity"
    assert json.loads(r2[7]) == {"empty": True}
    r3 = _row(db, "SELECT r4, r8, i2, u, d FROM everything WHERE id = 3")
    assert r3[0] == -math.inf
    assert r3[1] == 0.0
    assert r3[2] is None
    assert r3[3] is None
    assert r3[4] == "0044-03-15 BC"
    assert _row(db, "SELECT r4, r8 FROM everything WHERE id = 4") == (
        3.4028235e38,
        1.7976931348623157e308,
    )
    assert sorted(db.execute("SELECT a, b FROM no_key").fetchall(), key=repr) == sorted(
        [(1, "dup"), (1, "dup"), (None, None), (2, "two")], key=repr
    )
    assert (
        _row(db, "SELECT reading FROM measurements WHERE city = 'Oslo' AND at = '2024-05-01'")[0]
        == "NaN"
    )
    assert db.execute("SELECT count(*) FROM measurements").fetchone()[0] == 3
    assert db.execute("SELECT j, b FROM escapes ORDER BY id").fetchall() == [
        ('{"nul": "\\u0000", "lone": "\\ud800"}', b"\x00"),
        ('"\\\\u0000 is not an escape here"', None),
    ]


def test_constraints_indexes_defaults_and_sequences(migrated: Path) -> None:
    db = apsw.Connection(str(migrated))
    db.execute("PRAGMA foreign_keys = ON")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # composite foreign key: both columns, in order
    fk = [(r[3], r[4]) for r in db.execute("PRAGMA foreign_key_list(everything)")]
    assert fk == [("parent_region", "region"), ("parent_code", "code")]
    with pytest.raises(apsw.ConstraintError):
        db.execute("INSERT INTO everything (i4, parent_region, parent_code) VALUES (1, 'eu', 9)")
    indexes = {
        r[0]: r[1] for r in db.execute("SELECT name, sql FROM sqlite_schema WHERE type='index'")
    }
    assert "WHERE" in indexes["everything_i8_key"]  # partial unique index
    assert "lower" in indexes["everything_lower_t"]  # expression index
    assert '"i2" DESC' in indexes["everything_multi"]  # multi-column
    assert "everything_tsv" not in indexes
    for bad in (
        "INSERT INTO everything (i4, m) VALUES (1, 'angry')",  # enum CHECK
        "INSERT INTO everything (i4, flag) VALUES (1, 2)",  # boolean CHECK
        "INSERT INTO everything (i4, pos) VALUES (1, 0)",  # domain CHECK
        "INSERT INTO everything (i4) VALUES (-1)",  # table CHECK
        "INSERT INTO everything (i4, vc) VALUES (1, 'zzz')",  # CHECK with IN list
        "INSERT INTO everything (i4, i8) VALUES (1, 1)",  # partial unique index
        "INSERT INTO everything (i4, vc, ch) VALUES (1, 'a', 'ab  ')",  # UNIQUE (vc, ch)
        "INSERT INTO everything (i4) VALUES (NULL)",  # NOT NULL
        "INSERT INTO parent (region, code) VALUES ('eu', 1)",  # composite primary key
    ):
        with pytest.raises(apsw.ConstraintError):
            db.execute(bad)
    # defaults SQLite can express, and the identity continues after Postgres's position
    db.execute("INSERT INTO everything (i4, i8) VALUES (7, 42)")
    new = _row(db, "SELECT id, price, flag, u, tstz, d FROM everything WHERE i8 = 42")
    assert new[0] == 5
    assert new[1] == 0.0
    assert new[2] == 1
    assert len(new[3]) == 36
    assert new[3][14] == "4"
    assert new[4].endswith("+00:00")
    assert len(new[5]) == 10
    assert _row(db, "SELECT label FROM parent WHERE code = 2") == ("two",)


def test_invalid_utf8_text_is_refused_with_a_clear_message(make_db: Any, tmp_path: Path) -> None:
    dsn = make_db(
        "CREATE TABLE t (id int PRIMARY KEY, s text);"
        "INSERT INTO t VALUES (1, 'ok'), (2, convert_from('\\xff41'::bytea, 'SQL_ASCII'))",
        encoding="SQL_ASCII",
    )
    with pytest.raises(SourceError, match=r"table t: a text value is not valid UTF-8"):
        export_snapshot(dsn, tmp_path / "snap")


def test_overrides_change_storage_and_validate(all_types_dsn: str, tmp_path: Path) -> None:
    overrides = tmp_path / "o.toml"
    overrides.write_text('[columns]\n"everything.price" = "real"\n')
    from edgestore.migrate.overrides import load_overrides

    snap = tmp_path / "snap"
    m = export_snapshot(
        all_types_dsn, snap, tables=["everything", "parent"], overrides=load_overrides(overrides)
    )
    price = next(c for c in m.plan.table("everything").columns if c.name == "price")
    assert price.sqlite_type == "REAL"
    assert "override_lossy" in price.flags
    import_snapshot(snap, tmp_path / "o.db")
    assert validate(snap, tmp_path / "o.db")["ok"]
    db = apsw.Connection(str(tmp_path / "o.db"))
    assert _row(db, "SELECT price FROM everything WHERE id = 1") == (19.99,)
