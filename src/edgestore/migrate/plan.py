"""The migration plan: what every table and column becomes, and every lossy or risky step.

``build_plan`` turns the catalog into :class:`Plan` (SQLite DDL included, test-compiled in an
in-memory SQLite so that what the plan promises is what import will run). The plan is embedded
in the snapshot manifest, so ``import`` needs no Postgres.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import msgspec

from ..errors import MigrationError
from .bookkeeping import (
    LEGACY_SEQUENCES_TABLE,
    SEQUENCES_COLUMNS,
    SEQUENCES_TABLE,
    current_sequence_sql,
)
from .catalog import CatalogConstraint, CatalogTable, NotMoved
from .partitions import merge_partitions
from .pgexpr import translate_default, translate_expr
from .plan_support import Compiler, column_override, enum_order_by, sql_text, strip_check
from .sequences import sequence_of_default, sequence_triggers
from .typemap import FLAG_TEXT, TypeRule, map_type, quote_ident

__all__ = [
    "ColumnPlan",
    "Flag",
    "ForeignKeyPlan",
    "IndexPlan",
    "Plan",
    "SequencePlan",
    "TablePlan",
    "build_plan",
]

q = quote_ident

# how bad a flag is: lossy = a value or a behaviour changes; risky = a constraint, default or
# index is not enforced the same way; info = a representation choice worth knowing.
SEVERITY: dict[str, str] = {
    "money_as_text": "lossy",
    "array_as_json": "lossy",
    "override_lossy": "lossy",
    "composite_as_json": "lossy",
    "range_as_json": "lossy",
    "tsvector_as_text": "lossy",
    "unknown_type_as_text": "lossy",
    "enum_order_text": "risky",
    "numeric_as_text": "risky",
    "partition_unique_local": "risky",
    "partition_check_dropped": "risky",
    "default_dropped": "risky",
    "check_dropped": "risky",
    "index_dropped": "risky",
    "exclusion_dropped": "risky",
    "generated_materialised": "risky",
    "no_primary_key": "risky",
    "sequence_default_dropped": "risky",
    "nulls_not_distinct_dropped": "risky",
    "fk_not_valid": "risky",
    "partitioned_merged": "info",
    "index_include_dropped": "info",
}


class Flag(msgspec.Struct, frozen=True):
    code: str
    severity: str
    object: str
    message: str


class ColumnPlan(msgspec.Struct):
    name: str
    pg_type: str
    sqlite_type: str
    storage: str
    wire: str
    expr: str  # export expression, evaluated by Postgres
    not_null: bool
    default: str | None
    flags: list[str]
    float_column: bool = False


class IndexPlan(msgspec.Struct):
    name: str
    sql: str


class ForeignKeyPlan(msgspec.Struct):
    name: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]


class SequencePlan(msgspec.Struct):
    column: str
    sequence: str
    next_value: int | None = None  # filled by export: the next id Postgres would hand out
    increment: int = 1  # filled by export (trigger-numbered columns step by it)


class PartitionPlan(msgspec.Struct):
    name: str
    bound: str  # Postgres's FOR VALUES clause


class TriggerPlan(msgspec.Struct):
    name: str
    sql: str
    source: str  # what it stands for: a sequence default, or the Postgres trigger it translates


class TablePlan(msgspec.Struct):
    name: str
    source: str  # schema-qualified, quoted for Postgres
    kind: str
    columns: list[ColumnPlan]
    primary_key: list[str]
    create_sql: str
    indexes: list[IndexPlan]
    foreign_keys: list[ForeignKeyPlan]
    sequence: SequencePlan | None
    estimated_rows: int
    flags: list[Flag]
    # created after the bulk load: sequence numbering and translated row triggers
    triggers: list[TriggerPlan] = msgspec.field(default_factory=list)
    sequences: list[SequencePlan] = msgspec.field(default_factory=list)  # trigger-numbered
    partitions: list[PartitionPlan] = msgspec.field(default_factory=list)
    partition_key: str = ""
    suggested_check: str | None = None  # CHECK the contiguous range partition bounds imply

    def select_sql(self) -> str:
        """The export query: every column through its typemap expression."""
        cols = ", ".join(c.expr for c in self.columns)
        return f"SELECT {cols} FROM {self.source}"


class ViewPlan(msgspec.Struct):
    name: str
    pg_sql: str  # pg_get_viewdef
    sqlite_sql: str  # CREATE VIEW ... as translated (sqlglot)
    select_sql: str  # the view's rows through the typemap expressions (Postgres side)
    source_rows: int | None = None  # filled by export, from the snapshot transaction
    source_checksum: str | None = None


SEQUENCES_DDL = f"CREATE TABLE IF NOT EXISTS {SEQUENCES_TABLE} ({SEQUENCES_COLUMNS})"
# what plans made before the sqlite_ name said: kept in their DDL so that their digest (and
# with it resuming an import of an older snapshot) does not change
_LEGACY_SEQUENCES_DDL = f"CREATE TABLE IF NOT EXISTS {LEGACY_SEQUENCES_TABLE} ({SEQUENCES_COLUMNS})"


class Plan(msgspec.Struct):
    source: str
    schema: str
    server_version: str
    tables: list[TablePlan]
    not_moved: list[dict[str, str]]
    flags: list[Flag]
    views: list[ViewPlan] = msgspec.field(default_factory=list)

    def table(self, name: str) -> TablePlan:
        for t in self.tables:
            if t.name == name:
                return t
        raise MigrationError(f"table {name!r} is not in the plan")

    def _current_names(self) -> bool:
        """False for a plan made before the bookkeeping tables had ``sqlite_`` names."""
        return not any(
            current_sequence_sql(tr.sql) != tr.sql for t in self.tables for tr in t.triggers
        )

    def ddl(self) -> str:
        """All SQLite DDL, in the order import runs it."""
        parts = [t.create_sql + ";" for t in self.tables]
        parts += [i.sql + ";" for t in self.tables for i in t.indexes]
        if any(t.sequences for t in self.tables):
            parts.append((SEQUENCES_DDL if self._current_names() else _LEGACY_SEQUENCES_DDL) + ";")
        parts += [tr.sql + ";" for t in self.tables for tr in t.triggers]
        parts += [
            f"-- kept only if its results match Postgres's\n{v.sqlite_sql};" for v in self.views
        ]
        return "\n\n".join(parts) + "\n"


_FK_ACTION = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}


def _flag(code: str, obj: str, extra: str = "") -> Flag:
    msg = FLAG_TEXT.get(code, code)
    return Flag(code, SEVERITY.get(code, "info"), obj, f"{msg}{': ' + extra if extra else ''}")


def _plan_table(t: CatalogTable, overrides: Mapping[str, str], compiler: Compiler) -> TablePlan:
    flags: list[Flag] = []
    source = f"{q(t.schema)}.{q(t.name)}"
    if t.kind == "p":
        names = ", ".join(p.name for p in t.partitions) or "none"
        flags.append(_flag("partitioned_merged", t.name, f"{t.partition_key}; partitions {names}"))
    t, merged = merge_partitions(t)
    flags += [_flag(code, obj, extra) for code, obj, extra in merged]
    cons_by_kind: dict[str, list[CatalogConstraint]] = {}
    for con in t.constraints:
        cons_by_kind.setdefault(con.kind, []).append(con)
    pk = cons_by_kind.get("p", [])
    primary_key = pk[0].columns if pk else []
    if not primary_key:
        flags.append(_flag("no_primary_key", t.name))

    rules: dict[str, TypeRule] = {}
    columns: list[ColumnPlan] = []
    for col in t.columns:
        rule = column_override(col, t.name, overrides) or map_type(col.type, col.fits_double)
        rules[col.name] = rule
        cflags = list(rule.flags)
        if col.generated == "s":
            cflags.append("generated_materialised")
        if col.type.name in ("varchar", "bpchar") and "(" in col.type.sql:
            cflags.append("varchar_length_unchecked")
        if col.type.typtype == "e" and rule.storage == "text":
            labels = list(col.type.enum_labels)
            if labels != sorted(labels):
                cflags.append("enum_order_text")
        columns.append(
            ColumnPlan(
                name=col.name,
                pg_type=col.type.domain or col.type.sql,
                sqlite_type=rule.sqlite_type,
                storage=rule.storage,
                wire=rule.wire,
                expr=rule.expr(q(col.name)),
                not_null=col.not_null,
                default=None,
                flags=cflags,
                float_column=rule.float_column,
            )
        )
    comparable = {c.name: rules[c.name].comparable for c in t.columns}
    by_name = {c.name: c for c in t.columns}

    # a single integer key becomes the rowid (INTEGER PRIMARY KEY): no separate key index
    rowid_alias = len(primary_key) == 1 and rules[primary_key[0]].storage == "integer"
    sequence: SequencePlan | None = None
    numbered: list[SequencePlan] = []
    triggers: list[TriggerPlan] = []
    column_sql: list[str] = []
    for col, cp in zip(t.columns, columns, strict=True):
        parts = [q(col.name), cp.sqlite_type]
        if cp.storage == "padded text":
            parts.append("COLLATE RTRIM")  # bpchar semantics: trailing spaces do not count
        is_rowid = rowid_alias and col.name == primary_key[0]
        seq_name = col.sequence or sequence_of_default(col.default)
        if is_rowid:
            parts.append("PRIMARY KEY")
            if seq_name is not None:
                parts.append("AUTOINCREMENT")
                sequence = SequencePlan(col.name, seq_name)
        elif seq_name is not None and cp.storage == "integer":
            # NOT NULL would refuse the row before the numbering trigger runs: the trigger
            # pair enforces it instead (see sequence_triggers)
            numbered.append(SequencePlan(col.name, seq_name))
            triggers += [
                TriggerPlan(*tr)
                for tr in sequence_triggers(t.name, col.name, seq_name, col.not_null)
            ]
            cp.flags.append("sequence_trigger")
        nextval = (col.default or "").lower().startswith("nextval(")
        if (seq_name is not None and not is_rowid and cp.storage != "integer") or (
            nextval and seq_name is None
        ):
            cp.flags.append("sequence_default_dropped")
        if col.not_null and not (numbered and numbered[-1].column == col.name):
            parts.append("NOT NULL")
        if col.default is not None and col.generated != "s" and seq_name is None and not nextval:
            casts = (col.type.name,) if col.type.typtype == "e" else ()
            default = translate_default(col.default, cp.storage, col.type.name, casts)
            if default is not None and compiler.ok(
                f"{q(col.name)} {cp.sqlite_type} DEFAULT {default}"
            ):
                cp.default = default
                parts.append(f"DEFAULT {default}")
            else:
                cp.flags.append("default_dropped")
                flags.append(_flag("default_dropped", f"{t.name}.{col.name}", col.default))
        checks: list[str] = []
        if cp.storage == "boolean 0/1":
            checks.append(f"{q(col.name)} IN (0, 1)")
        if col.type.typtype == "e" and cp.storage == "text":
            label_list = ", ".join(sql_text(lab) for lab in col.type.enum_labels)
            checks.append(f"{q(col.name)} IN ({label_list})")
        for dcheck in col.domain_checks:
            expr = translate_expr(
                strip_check(dcheck).replace("VALUE", q(col.name)), {col.name: comparable[col.name]}
            )
            if expr is not None and compiler.ok(f"{q(col.name)} {cp.sqlite_type} CHECK ({expr})"):
                checks.append(expr)
            else:
                flags.append(_flag("check_dropped", f"{t.name}.{col.name}", dcheck))
        for chk in checks:
            parts.append(f"CHECK ({chk})")
        column_sql.append(" ".join(parts))
        for code in cp.flags:
            if code == "enum_order_text":
                flags.append(_flag(code, f"{t.name}.{col.name}", enum_order_by(col)))
            elif code in SEVERITY and code not in ("default_dropped",):
                flags.append(_flag(code, f"{t.name}.{col.name}"))

    table_parts = list(column_sql)
    if primary_key and not rowid_alias:
        table_parts.append(f"PRIMARY KEY ({', '.join(q(c) for c in primary_key)})")
    foreign_keys: list[ForeignKeyPlan] = []
    for con in cons_by_kind.get("f", []):
        if con.ref_schema != t.schema:
            flags.append(
                _flag("check_dropped", f"{t.name}.{con.name}", "references another schema")
            )
            continue
        clause = (
            f"CONSTRAINT {q(con.name)} FOREIGN KEY ({', '.join(q(c) for c in con.columns)}) "
            f"REFERENCES {q(con.ref_table or '')} ({', '.join(q(c) for c in con.ref_columns)})"
        )
        if con.on_delete != "a":
            clause += f" ON DELETE {_FK_ACTION[con.on_delete]}"
        if con.on_update != "a":
            clause += f" ON UPDATE {_FK_ACTION[con.on_update]}"
        if con.deferrable and con.deferred:
            clause += " DEFERRABLE INITIALLY DEFERRED"
        if not con.validated:
            flags.append(_flag("fk_not_valid", f"{t.name}.{con.name}"))
        table_parts.append(clause)
        foreign_keys.append(
            ForeignKeyPlan(con.name, con.columns, con.ref_table or "", con.ref_columns)
        )
    cols_only = ", ".join(column_sql)
    for con in cons_by_kind.get("c", []):
        expr = translate_expr(strip_check(con.definition), comparable)
        if expr is not None and compiler.ok(cols_only, f", CHECK ({expr})"):
            table_parts.append(f"CONSTRAINT {q(con.name)} CHECK ({expr})")
        else:
            flags.append(_flag("check_dropped", f"{t.name}.{con.name}", con.definition))
    for con in cons_by_kind.get("x", []):
        flags.append(_flag("exclusion_dropped", f"{t.name}.{con.name}", con.definition))

    indexes: list[IndexPlan] = []
    # UNIQUE constraints become unique indexes built after the bulk load (same semantics in
    # SQLite, and a foreign key may reference them), instead of indexes maintained row by row.
    for con in cons_by_kind.get("u", []):
        if con.nulls_not_distinct:
            flags.append(_flag("nulls_not_distinct_dropped", f"{t.name}.{con.name}"))
        indexes.append(
            IndexPlan(
                con.name,
                f"CREATE UNIQUE INDEX {q(con.name)} ON {q(t.name)} "
                f"({', '.join(q(c) for c in con.columns)})",
            )
        )
    for ix in t.indexes:
        obj = f"{t.name}.{ix.name}"
        if ix.method not in ("btree", "hash"):
            flags.append(_flag("index_dropped", obj, f"{ix.method} index"))
            continue
        if ix.method == "hash":
            flags.append(_flag("index_kind_changed", obj))
        if ix.include:
            flags.append(_flag("index_include_dropped", obj))
        if ix.nulls_not_distinct:
            flags.append(_flag("nulls_not_distinct_dropped", obj))
        keys: list[str] = []
        for key, is_expr, desc in zip(ix.keys, ix.key_is_expr, ix.desc, strict=True):
            if is_expr:
                expr = translate_expr(key, comparable)
                if expr is None:
                    break
                key_sql = f"({expr})"
            else:
                name = key[1:-1].replace('""', '"') if key.startswith('"') else key
                if name not in by_name:
                    break
                key_sql = q(name)
            keys.append(key_sql + (" DESC" if desc else ""))
        else:
            sql = (
                f"CREATE {'UNIQUE ' if ix.unique else ''}INDEX {q(ix.name)} ON {{table}} "
                f"({', '.join(keys)})"
            )
            if ix.predicate is not None:
                pred = translate_expr(ix.predicate, comparable)
                if pred is None:
                    flags.append(_flag("index_dropped", obj, f"predicate {ix.predicate}"))
                    continue
                sql += f" WHERE {pred}"
            if compiler.ok(cols_only, "", index=sql):
                indexes.append(IndexPlan(ix.name, sql.replace("{table}", q(t.name))))
                continue
        flags.append(_flag("index_dropped", obj, ", ".join(ix.keys)))

    create_sql = f"CREATE TABLE {q(t.name)} (\n  " + ",\n  ".join(table_parts) + "\n)"
    return TablePlan(
        name=t.name,
        source=source,
        kind=t.kind,
        columns=columns,
        primary_key=primary_key,
        create_sql=create_sql,
        indexes=indexes,
        foreign_keys=foreign_keys,
        sequence=sequence,
        estimated_rows=t.estimated_rows,
        flags=flags,
        triggers=triggers,
        sequences=numbered,
        partitions=[PartitionPlan(p.name, p.bound) for p in t.partitions],
        partition_key=t.partition_key,
    )


def build_plan(
    tables: list[CatalogTable],
    not_moved: list[NotMoved],
    *,
    source: str,
    schema: str,
    server_version: str,
    overrides: Mapping[str, str] | None = None,
) -> Plan:
    """Map every table; raise :class:`MigrationError` for names SQLite cannot hold apart."""
    seen: dict[str, str] = {}
    for t in tables:
        low = t.name.lower()
        if low.startswith(("sqlite_", "_edgestore")):
            raise MigrationError(f"table name {t.name!r} is reserved in SQLite/edgestore")
        if low in seen:
            raise MigrationError(
                f"tables {seen[low]!r} and {t.name!r} differ only in case; SQLite table "
                "names are case-insensitive (rename one, or migrate them separately)"
            )
        seen[low] = t.name
    compiler = Compiler()
    plans = [_plan_table(t, overrides or {}, compiler) for t in tables]
    flags: list[Flag] = []
    if any(c.storage == "text" for p in plans for c in p.columns):
        flags.append(_flag("collation_binary", schema))
    return Plan(
        source=source,
        schema=schema,
        server_version=server_version,
        tables=plans,
        not_moved=[{"kind": n.kind, "name": n.name, "reason": n.reason} for n in not_moved],
        flags=flags,
    )


def plan_digest(plan: Plan) -> str:
    """A short fingerprint of the DDL (import refuses to resume into a different plan)."""
    return hashlib.sha256(plan.ddl().encode()).hexdigest()[:16]
