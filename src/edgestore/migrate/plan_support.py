"""What the planner leans on: test-compiling DDL in SQLite, per-column type overrides, SQL
literals, and the ordering aid for enums stored as text."""

from __future__ import annotations

from collections.abc import Mapping

import apsw

from ..errors import MigrationError
from .catalog import CatalogColumn
from .typemap import OVERRIDES, TypeRule, scaled_rule
from .typemap import quote_ident as q

__all__ = ["Compiler", "column_override", "enum_order_by", "sql_text", "strip_check"]


def strip_check(defn: str) -> str:
    body = defn.strip()
    if body.upper().endswith("NOT VALID"):
        body = body[: -len("NOT VALID")].strip()
    if body.upper().startswith("CHECK"):
        body = body[5:].strip()
    if body.upper().endswith("NO INHERIT"):
        body = body[: -len("NO INHERIT")].strip()
    return body


class Compiler:
    """An in-memory SQLite used to prove each translated piece of DDL compiles."""

    def __init__(self) -> None:
        self.db = apsw.Connection(":memory:")
        self.n = 0

    def ok(self, columns_sql: str, extra: str = "", index: str | None = None) -> bool:
        self.n += 1
        name = f"t{self.n}"
        try:
            self.db.execute(f"CREATE TABLE {name} ({columns_sql}{extra})")
            if index is not None:
                self.db.execute(index.replace("{table}", name))
        except apsw.Error:
            return False
        return True


def column_override(
    col: CatalogColumn, table: str, overrides: Mapping[str, str]
) -> TypeRule | None:
    key = overrides.get(f"{table}.{col.name}")
    if key is None:
        return None
    if key not in OVERRIDES:
        raise MigrationError(
            f"type override for {table}.{col.name}: unknown storage {key!r} "
            f"(choose from {', '.join(sorted(OVERRIDES))})"
        )
    if key == "scaled_integer":
        rule = scaled_rule(col.type.sql)
        if rule is None:
            raise MigrationError(
                f"type override for {table}.{col.name}: scaled_integer needs numeric(p,s) "
                f"with p <= 18, not {col.type.sql}"
            )
        return rule
    return OVERRIDES[key]


def sql_text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def enum_order_by(col: CatalogColumn) -> str:
    """The ORDER BY expression that sorts an enum stored as text in Postgres's order."""
    whens = " ".join(f"WHEN {sql_text(lab)} THEN {i}" for i, lab in enumerate(col.type.enum_labels))
    return f"ORDER BY CASE {q(col.name)} {whens} END"
