"""The conservative Postgres -> SQLite expression rewrite."""

from __future__ import annotations

import pytest

from edgestore.migrate.pgexpr import translate_default, translate_expr

COLS = {"a": True, "b": True, "price": False, "Name": True}


@pytest.mark.parametrize(
    ("pg", "sqlite"),
    [
        ("((a > 0) AND (b < 10))", "((a > 0) AND (b < 10))"),
        (
            "((b)::text = ANY ((ARRAY['x'::character varying, 'y'::character varying])::text[]))",
            "((b) IN ('x', 'y'))",
        ),
        ("(a <> ALL (ARRAY[1, 2]))", "(a NOT IN (1, 2))"),
        ('(char_length(("Name")::text) >= 2)', '(length(("Name")) >= 2)'),
        ("lower(b)", "lower(b)"),
        ("(a IS NOT NULL)", "(a IS NOT NULL)"),
    ],
)
def test_portable_expressions(pg: str, sqlite: str) -> None:
    assert translate_expr(pg, COLS) == sqlite


@pytest.mark.parametrize(
    "pg",
    [
        "(price > (0)::numeric)",  # numeric is stored as text: comparisons would differ
        "((b)::text ~~ 'x%'::text)",  # LIKE is case-insensitive in SQLite
        "(b ~ '^x'::text)",
        "(md5(b) <> ''::text)",
        "(a > other_table_col)",
        "((b)::jsonb ? 'k'::text)",
    ],
)
def test_non_portable_expressions(pg: str) -> None:
    assert translate_expr(pg, COLS) is None


@pytest.mark.parametrize(
    ("pg", "storage", "pg_type", "sqlite"),
    [
        ("0", "integer", "int4", "0"),
        ("'-1'::integer", "integer", "int4", "-1"),
        ("0.00", "decimal text", "numeric", "'0.00'"),
        ("true", "boolean 0/1", "bool", "1"),
        ("'hello'::character varying", "text", "varchar", "'hello'"),
        ("'NaN'::double precision", "real (float8)", "float8", "'NaN'"),
        (
            "now()",
            "timestamp UTC text",
            "timestamptz",
            "(strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))",
        ),
        ("CURRENT_DATE", "text", "date", "CURRENT_DATE"),
        ("(random() * 10)", "real (float8)", "float8", None),
        ("'{}'::jsonb", "text", "jsonb", None),
    ],
)
def test_defaults(pg: str, storage: str, pg_type: str, sqlite: str | None) -> None:
    assert translate_default(pg, storage, pg_type) == sqlite


@pytest.mark.parametrize(
    ("pg", "storage", "casts", "sqlite"),
    [
        ("'G'::mpaa_rating", "text", ("mpaa_rating",), "'G'"),
        ("'G'::mpaa_rating", "text", (), None),  # an unknown cast is not stripped blindly
        ("4.99", "real (exact decimal)", (), "4.99"),
        ("'19.99'::numeric", "real (exact decimal)", (), "19.99"),
        ("19.99", "integer x10^2", (), "1999"),
        ("0.005", "integer x10^2", (), None),  # not a whole number of units
    ],
)
def test_enum_numeric_and_scaled_defaults(
    pg: str, storage: str, casts: tuple[str, ...], sqlite: str | None
) -> None:
    assert translate_default(pg, storage, "", casts) == sqlite
