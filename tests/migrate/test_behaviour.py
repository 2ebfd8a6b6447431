"""A migrated database answers like its source: the application's queries, run on both sides
(tests/migrate/shop.sql: partitions, domains, enums, sequences, char(n), numeric at several
precisions, views and triggers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apsw
import jsonschema
import psycopg
import pytest
from click.testing import CliRunner

from edgestore.cli.main import main
from edgestore.migrate import run
from edgestore.migrate.views import loose_row


@pytest.fixture(scope="module")
def shop(shop_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    target = tmp_path_factory.mktemp("shop") / "shop.db"
    report = run(shop_dsn, target, keep_snapshot=True)
    assert report["ok"], report
    schemas = Path(__file__).resolve().parents[2] / "schemas"
    manifest = json.loads((target.with_name("shop.db.snapshot") / "manifest.json").read_text())
    jsonschema.validate(
        manifest, json.loads((schemas / "snapshot-manifest.schema.json").read_text())
    )
    jsonschema.validate(report, json.loads((schemas / "validation-report.schema.json").read_text()))
    return target, report


def _both(dsn: str, target: Path, pg_sql: str, lite_sql: str | None = None) -> tuple[Any, Any]:
    with psycopg.connect(dsn) as pg:
        pg.execute("SET TimeZone = 'UTC'")
        a = [loose_row(r) for r in pg.execute(pg_sql).fetchall()]
    db = apsw.Connection(str(target))
    try:
        b = [loose_row(r) for r in db.execute(lite_sql or pg_sql).fetchall()]
    finally:
        db.close()
    return a, b


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM payment WHERE amount > 5",
        "SELECT max(amount), min(amount) FROM payment",
        "SELECT sum(amount), avg(amount) FROM payment",
        "SELECT film_id, replacement_cost AS c FROM film ORDER BY c DESC, film_id LIMIT 9",
        "SELECT count(*) FROM film WHERE rental_rate = 4.99",
        "SELECT count(*) FROM film WHERE score >= 45.5",
        "SELECT max(score) FROM film",
        "SELECT customer_id, sum(amount) FROM payment GROUP BY customer_id ORDER BY 2 DESC, 1",
    ],
)
def test_numbers_behave_as_numbers(shop_dsn: str, shop: tuple[Path, Any], sql: str) -> None:
    pg, lite = _both(shop_dsn, shop[0], sql)
    assert pg == lite


def test_numeric_kept_as_text_only_where_exactness_needs_it(shop: tuple[Path, Any]) -> None:
    target, report = shop
    db = apsw.Connection(str(target))
    # p > 15 and an unconstrained column holding a value of 20 digits: exact text, flagged
    # risky with the consequence and the override
    assert db.execute("SELECT lifetime_gross FROM film WHERE film_id = 2").fetchone() == (
        "246913578024691.3578",
    )
    assert db.execute("SELECT exact_ratio FROM film WHERE film_id = 7").fetchone() == (
        "1.0000000000000000001",
    )
    risky = {(f["code"], f["object"]): f["message"] for f in report["risky"]}
    message = risky[("numeric_as_text", "film.lifetime_gross")]
    assert "text-wise" in message
    assert "scaled_integer" in message
    assert ("numeric_as_text", "film.exact_ratio") in risky
    types = dict(db.execute("SELECT name, type FROM pragma_table_info('film')").fetchall())
    assert types["replacement_cost"] == "REAL"  # numeric(5,2)
    assert types["rental_rate"] == "REAL"  # a domain over numeric(6,2)
    assert types["score"] == "REAL"  # unconstrained, every value fits a double


def test_char_n_compares_as_in_postgres(shop_dsn: str, shop: tuple[Path, Any]) -> None:
    for sql in (
        "SELECT count(*) FROM language WHERE name = 'English'",
        "SELECT store, count(*) FROM ticket GROUP BY store ORDER BY store",
        "SELECT count(*) FROM customer WHERE store_code = 'S2'",
    ):
        pg, lite = _both(shop_dsn, shop[0], sql)
        assert pg == lite, sql
    pg, _ = _both(shop_dsn, shop[0], "SELECT count(*) FROM language WHERE name = 'English'")
    assert pg == [[1]]


def test_partitions_carry_their_foreign_keys_and_indexes(shop: tuple[Path, Any]) -> None:
    target, report = shop
    db = apsw.Connection(str(target))
    fks = {(r[2], r[3]) for r in db.execute("PRAGMA foreign_key_list(payment)")}
    assert fks == {("customer", "customer_id"), ("film", "film_id")}
    indexed = {
        db.execute(f"PRAGMA index_info({json.dumps(r[1])})").fetchone()[2]
        for r in db.execute("PRAGMA index_list(payment)")
        if r[3] == "c"
    }
    assert {"customer_id", "film_id"} <= indexed
    db.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(apsw.ConstraintError):
        db.execute(
            "INSERT INTO payment (customer_id, film_id, amount, payment_date) "
            "VALUES (999, 1, 1, '2022-01-05 00:00:00+00:00')"
        )
    meta = dict(db.execute("SELECT key, value FROM sqlite_edgestore_migration"))
    payment = next(t for t in json.loads(meta["plan"])["tables"] if t["name"] == "payment")
    assert [p["name"] for p in payment["partitions"]] == [
        "payment_p2022_01",
        "payment_p2022_02",
        "payment_p2022_03",
    ]
    assert payment["partitions"][0]["bound"].startswith("FOR VALUES FROM ('2022-01-01")
    assert payment["suggested_check"] == (
        "\"payment_date\" >= '2022-01-01 00:00:00+00:00' AND "
        "\"payment_date\" < '2022-04-01 00:00:00+00:00'"
    )
    # nothing dropped without a name: the partition's own CHECK, and what each merged FK
    # and index stands for
    codes = {(f["code"], f["object"]) for f in report["risky"]}
    assert ("partition_check_dropped", "payment_p2022_02.payment_p2022_02_amount_check") in codes
    merged = [f for f in payment["flags"] if f["code"] == "partition_objects_merged"]
    assert any("payment_p2022_03_customer_id_fkey" in f["message"] for f in merged)
    assert any("idx_fk_payment_p2022_02_film_id" in f["message"] for f in merged)


def _copy(target: Path, tmp_path: Path) -> Path:
    """A private copy for a test that writes (the module's target stays the source's twin)."""
    copy = tmp_path / "copy.db"
    copy.write_bytes(target.read_bytes())  # checkpointed: the import leaves no WAL content
    return copy


def test_defaults_and_sequences_work_for_new_rows(
    shop_dsn: str, shop: tuple[Path, Any], tmp_path: Path
) -> None:
    target = _copy(shop[0], tmp_path)
    with psycopg.connect(shop_dsn) as pg:
        issued = pg.execute("SELECT last_value FROM payment_payment_id_seq").fetchone()[0]
        ticket_last = pg.execute("SELECT last_value FROM ticket_seq").fetchone()[0]
    db = apsw.Connection(str(target))
    db.execute("PRAGMA foreign_keys = ON")
    # fulltext was filled by a trigger that could not move (named in the report): supplied here
    with pytest.raises(apsw.ConstraintError, match=r"film\.fulltext"):
        db.execute("INSERT INTO film (title, language_id) VALUES ('NO TEXT', 1)")
    db.execute("INSERT INTO film (title, language_id, fulltext) VALUES ('NEW FILM', 1, '')")
    assert db.execute(
        "SELECT film_id, rating, rental_rate, replacement_cost FROM film WHERE title = 'NEW FILM'"
    ).fetchone() == (62, "G", 4.99, 19.99)
    # partitioned table, composite key: numbered by the trigger after Postgres's last id
    db.execute(
        "INSERT INTO payment (customer_id, film_id, amount, payment_date) "
        "VALUES (1, 1, 2.5, '2022-03-09 00:00:00+00:00')"
    )
    db.execute(
        "INSERT INTO payment (customer_id, film_id, amount, payment_date) "
        "VALUES (2, 1, 2.5, '2022-03-09 00:00:00+00:00')"
    )
    new = db.execute(
        "SELECT payment_id, status FROM payment WHERE amount = 2.5 ORDER BY payment_id"
    ).fetchall()
    assert new == [(issued + 1, "pending"), (issued + 2, "pending")]
    db.execute("INSERT INTO ticket (store) VALUES ('S3')")
    assert db.execute("SELECT ticket_no FROM ticket WHERE store = 'S3'").fetchone() == (
        ticket_last + 1,
    )
    with pytest.raises(apsw.ConstraintError, match="NOT NULL"):
        db.execute("UPDATE payment SET payment_id = NULL WHERE payment_id = ?", (issued + 1,))
    db.execute("INSERT INTO customer (first_name, last_name) VALUES ('A', 'B')")
    assert db.execute("SELECT max(customer_id), store_code, active FROM customer").fetchone() == (
        41,
        "S1",
        1,
    )


def test_enum_order_is_flagged_with_the_order_that_sorts_like_postgres(
    shop_dsn: str, shop: tuple[Path, Any]
) -> None:
    _, report = shop
    flag = next(
        f
        for f in report["risky"]
        if f["code"] == "enum_order_text" and f["object"] == "payment.status"
    )
    order_by = flag["message"][flag["message"].index("ORDER BY CASE") :]
    assert order_by.startswith("ORDER BY CASE")
    pg, lite = _both(
        shop_dsn,
        shop[0],
        "SELECT DISTINCT status FROM payment ORDER BY status",
        f"SELECT DISTINCT status FROM payment {order_by}",
    )
    assert pg == lite == [["pending"], ["paid"], ["refunded"]]


def test_views_are_translated_verified_or_named(shop_dsn: str, shop: tuple[Path, Any]) -> None:
    target, report = shop
    moved = {(m["kind"], m["name"]) for m in report["moved_objects"]}
    assert {("view", "customer_list"), ("view", "sales_by_film"), ("view", "big_payments")} <= (
        moved
    )
    not_moved = {(n["kind"], n["name"]): n["reason"] for n in report["not_moved"]}
    assert "TIMESTAMP_TRUNC" in not_moved[("view", "monthly_sales")]
    assert "returns different rows" in not_moved[("view", "first_status")]
    assert "uses a view that was not moved" in not_moved[("view", "first_status_count")]
    assert ("materialized view", "rental_stats") in not_moved
    db = apsw.Connection(str(target))
    views = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'view'")}
    assert "monthly_sales" not in views
    for sql in (
        "SELECT count(*), max(amount) FROM big_payments",
        # sums are doubles in SQLite: equal totals of different addends may differ in the
        # last bit, so ties on a computed sum are broken by the title here
        "SELECT title, payments, total, top FROM sales_by_film ORDER BY title",
        "SELECT title, payments, round(total, 2) AS t FROM sales_by_film ORDER BY t DESC, title",
        "SELECT name, notes FROM customer_list ORDER BY id",
    ):
        pg, lite = _both(shop_dsn, target, sql)
        assert pg == lite, sql


def test_simple_row_triggers_move_and_the_rest_are_named(
    shop: tuple[Path, Any], tmp_path: Path
) -> None:
    target, report = _copy(shop[0], tmp_path), shop[1]
    db = apsw.Connection(str(target))
    db.execute(
        "UPDATE language SET last_update = '2000-01-01 00:00:00+00:00' WHERE language_id = 2"
    )
    stamp = db.execute("SELECT last_update FROM language WHERE language_id = 2").fetchone()[0]
    assert stamp > "2020"  # the trigger set it to now, in UTC
    assert stamp.endswith("+00:00")
    not_moved = {(n["kind"], n["name"]): n["reason"] for n in report["not_moved"]}
    assert "more than one assignment" in not_moved[("trigger", "film.film_title_upper")]
    assert (
        "it set fulltext (NOT NULL, no default)"
        in not_moved[("trigger", "film.film_fulltext_trigger")]
    )
    assert "translated inline" in not_moved[("function", "last_updated()")]
    assert ("trigger", "customer.last_updated") not in not_moved


def test_run_says_what_it_left_behind(shop_dsn: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["migrate", "run", "--from", shop_dsn, "--to", str(tmp_path / "a.db"), "--json"]
    )
    assert r.exit_code == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    summary = next(e for e in events if e["event"] == "summary")
    assert {"kind": "trigger", "name": "film.film_title_upper"} in [
        {"kind": n["kind"], "name": n["name"]} for n in summary["not_moved"]
    ]
    assert any(f["code"] == "numeric_as_text" for f in summary["risky"])
    report = events[-1]
    assert report["event"] == "report"
    assert report["not_moved"] == summary["not_moved"]
    r = CliRunner().invoke(
        main, ["migrate", "run", "--from", shop_dsn, "--to", str(tmp_path / "b.db"), "--strict"]
    )
    assert r.exit_code == 6, r.output
    assert "not moved (" in r.stdout
    assert "view monthly_sales: the translation does not run in SQLite" in r.stdout
    assert "risky or lossy changes (" in r.stdout
    assert "validation: OK" in r.stdout


def test_validate_runs_the_users_queries_on_both_sides(
    shop_dsn: str, shop: tuple[Path, Any], tmp_path: Path
) -> None:
    queries = tmp_path / "q.toml"
    queries.write_text(
        """
[[query]]
name = "big payments"
postgres = "SELECT count(*) FROM payment WHERE amount > 5"

[[query]]
name = "top films"
postgres = "SELECT title, total FROM sales_by_film ORDER BY total DESC, title LIMIT 3"

[[query]]
name = "statuses in order"
postgres = "SELECT DISTINCT status FROM payment ORDER BY status"

[[query]]
name = "explicit sqlite form"
postgres = "SELECT date_trunc('month', payment_date)::date, count(*) FROM payment GROUP BY 1"
sqlite = "SELECT substr(payment_date, 1, 7) || '-01', count(*) FROM payment GROUP BY 1"
""",
        encoding="utf-8",
    )
    report_path = tmp_path / "report.json"
    r = CliRunner().invoke(
        main,
        [
            "migrate", "validate", "--from", shop_dsn, "--to", str(shop[0]),
            "--queries", str(queries), "--report", str(report_path),
        ],
    )  # fmt: skip
    assert r.exit_code == 1, r.output  # the enum order differs, and is shown
    report = json.loads(report_path.read_text())
    schemas = Path(__file__).resolve().parents[2] / "schemas"
    jsonschema.validate(report, json.loads((schemas / "validation-report.schema.json").read_text()))
    status = {q["name"]: q["status"] for q in report["queries"]}
    assert status == {
        "big payments": "same",
        "top films": "same",
        "statuses in order": "different",
        "explicit sqlite form": "same",
    }
    different = next(q for q in report["queries"] if q["name"] == "statuses in order")
    assert different["only_in_postgres"][0] == ["pending"]
    assert "different query statuses in order" in r.stdout


def test_overrides_scaled_integer_and_trimmed_char(shop_dsn: str, tmp_path: Path) -> None:
    from edgestore.migrate.overrides import load_overrides

    overrides = tmp_path / "o.toml"
    overrides.write_text(
        '[columns]\n"payment.amount" = "scaled_integer"\n"language.name" = "trimmed_text"\n',
        encoding="utf-8",
    )
    target = tmp_path / "o.db"
    report = run(shop_dsn, target, tables=["payment", "language", "customer", "film"],
                 overrides=load_overrides(overrides))  # fmt: skip
    assert report["ok"], report  # validation is exact under the chosen storage
    db = apsw.Connection(str(target))
    # cents: exact integers, ordered and compared as numbers
    assert db.execute(
        "SELECT max(amount), count(*) FROM payment WHERE amount > 500"
    ).fetchone() == (
        1199,
        160,
    )
    assert db.execute("SELECT name FROM language WHERE language_id = 1").fetchone() == ("English",)
    bad = tmp_path / "bad.toml"  # numeric(20,4): 10^4 units may not fit 64 bits
    bad.write_text('[columns]\n"film.lifetime_gross" = "scaled_integer"\n', encoding="utf-8")
    with pytest.raises(Exception, match="scaled_integer needs numeric"):
        run(shop_dsn, tmp_path / "bad.db", tables=["film"], overrides=load_overrides(bad))


def test_queries_file_is_checked(tmp_path: Path) -> None:
    from edgestore.errors import MigrationError
    from edgestore.migrate.queries import load_queries

    example = Path(__file__).resolve().parents[2] / "migrate" / "queries.example.toml"
    assert [q["name"] for q in load_queries(example)] == [
        "payments over 5",
        "most expensive films",
        "revenue per month",
    ]
    bad = tmp_path / "q.toml"
    bad.write_text('[[query]]\nname = "x"\nsqlite = "SELECT 1"\n', encoding="utf-8")
    with pytest.raises(MigrationError, match="has no postgres"):
        load_queries(bad)
    snap = tmp_path / "snap"
    snap.mkdir()
    r = CliRunner().invoke(
        main,
        ["migrate", "validate", "--from", str(snap), "--to", str(tmp_path / "x.db"),
         "--queries", str(example)],
    )  # fmt: skip
    assert r.exit_code == 5
    assert "--from must be a DSN" in r.stderr


def test_numeric_stored_by_the_data_still_validates_exactly(make_db: Any, tmp_path: Path) -> None:
    from edgestore.migrate import validate

    dsn = make_db(
        "CREATE TABLE m (id int PRIMARY KEY, v numeric); INSERT INTO m VALUES (1, 1.5), (2, 0.1)"
    )
    target = tmp_path / "m.db"
    assert run(dsn, target)["ok"]
    db = apsw.Connection(str(target))
    assert db.execute("SELECT v FROM m ORDER BY id").fetchall() == [(1.5,), (0.1,)]
    assert validate(dsn, target)["ok"]
    with psycopg.connect(dsn, autocommit=True) as pg:  # a value a double cannot hold
        pg.execute("UPDATE m SET v = 0.10000000000000000001 WHERE id = 2")
    live = validate(dsn, target)
    assert live["ok"] is False
    assert live["tables"][0]["differences"][0]["key"] == {"id": 2}


def test_a_trigger_numbered_id_reads_back_by_rowid(shop: tuple[Path, Any], tmp_path: Path) -> None:
    db = apsw.Connection(str(_copy(shop[0], tmp_path)))
    # as the sequence_trigger flag says: RETURNING sees the row before the trigger numbers it
    assert db.execute(
        "INSERT INTO ticket (store) VALUES ('S9') RETURNING ticket_no"
    ).fetchall() == [(None,)]
    assert (
        db.execute("SELECT ticket_no FROM ticket WHERE rowid = last_insert_rowid()").fetchone()[0]
        > 500
    )


def test_partition_bounds_check_is_offered_and_applied_on_request(
    shop_dsn: str, tmp_path: Path
) -> None:
    r = CliRunner().invoke(main, ["migrate", "plan", "--from", shop_dsn, "--tables", "payment"])
    assert r.exit_code == 0, r.stderr
    assert "payment_p2022_02 FOR VALUES FROM ('2022-02-01 00:00:00+00')" in r.stdout
    assert "offered, add it with --partition-checks" in r.stdout
    target = tmp_path / "p.db"
    r = CliRunner().invoke(
        main,
        ["migrate", "run", "--from", shop_dsn, "--to", str(target),
         "--tables", "payment,customer,film,language", "--partition-checks"],
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    db = apsw.Connection(str(target))
    insert = "INSERT INTO payment (customer_id, film_id, amount, payment_date) VALUES (1, 1, 1, ?)"
    db.execute(insert, ("2022-03-31 23:59:59.5+00:00",))  # inside the partitions' range
    with pytest.raises(apsw.ConstraintError, match="payment_partition_bounds"):
        db.execute(insert, ("2022-04-01 00:00:00+00:00",))  # Postgres had no partition for it


def test_a_format_1_snapshot_still_imports(make_db: Any, tmp_path: Path) -> None:
    from edgestore.migrate import export_snapshot, import_snapshot, validate

    dsn = make_db(
        "CREATE TABLE t (id serial PRIMARY KEY, v numeric(4, 1)); INSERT INTO t (v) VALUES (1.5)"
    )
    snap = tmp_path / "snap"
    export_snapshot(dsn, snap)
    manifest = json.loads((snap / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    manifest["format_version"] = 1  # as an earlier edgestore wrote it: no views, triggers...
    del manifest["plan"]["views"]
    for table in manifest["plan"]["tables"]:
        for key in ("triggers", "sequences", "partitions", "partition_key", "suggested_check"):
            del table[key]
    (snap / "manifest.json").write_text(json.dumps(manifest))
    import_snapshot(snap, tmp_path / "t.db")
    assert validate(snap, tmp_path / "t.db")["ok"]
