"""The human-readable plan (``edgestore migrate plan``)."""

from __future__ import annotations

from .plan import Plan

__all__ = ["render_text"]


def render_text(plan: Plan) -> str:
    """The human-readable plan."""
    out: list[str] = [f"source {plan.source} (schema {plan.schema}, {plan.server_version})", ""]
    for t in plan.tables:
        pk = ", ".join(t.primary_key) or "none"
        out.append(f"table {t.name}  (~{t.estimated_rows} rows, primary key: {pk})")
        width = max((len(c.name) for c in t.columns), default=4)
        twidth = max((len(c.pg_type) for c in t.columns), default=4)
        for c in t.columns:
            codes = f"  [{', '.join(c.flags)}]" if c.flags else ""
            out.append(
                f"  {c.name:<{width}}  {c.pg_type:<{twidth}}  -> {c.sqlite_type:<7} "
                f"{c.storage}{codes}"
            )
        for ix in t.indexes:
            out.append(f"  index {ix.name}")
        for fk in t.foreign_keys:
            out.append(
                f"  foreign key {fk.name} ({', '.join(fk.columns)}) -> "
                f"{fk.ref_table} ({', '.join(fk.ref_columns)})"
            )
        for tr in t.triggers:
            out.append(f"  trigger {tr.name}: {tr.source}")
        if t.partitions:
            out.append(f"  partitioned by {t.partition_key}; merged partitions:")
            out += [f"    {p.name} {p.bound}" for p in t.partitions]
            if t.suggested_check:
                how = (
                    "applied"
                    if t.suggested_check in t.create_sql
                    else "offered, add it with --partition-checks"
                )
                out.append(f"  the bounds cover one range: CHECK ({t.suggested_check}) ({how})")
        out.append("")
    if plan.views:
        out.append("views translated (kept only if their rows match Postgres's after import):")
        out += [f"  {v.name}" for v in plan.views]
        out.append("")
    all_flags = [f for t in plan.tables for f in t.flags] + plan.flags
    if all_flags:
        out.append("flags:")
        for f in all_flags:
            out.append(f"  {f.severity:<5} {f.code:<26} {f.object}: {f.message}")
        out.append("")
    if plan.not_moved:
        out.append("not moved:")
        for n in plan.not_moved:
            out.append(f"  {n['kind']} {n['name']}: {n['reason']}")
        out.append("")
    return "\n".join(out)
