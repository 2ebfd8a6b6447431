"""Type overrides: a TOML document choosing another storage for given columns.

It is an input of the pipeline (like a schema file), not a setting, so it is read here::

    [columns]
    "products.unit_price" = "real"     # text | real | integer | blob | json

See ``migrate/type-overrides.example.toml``. Lossier choices are flagged ``override_lossy``
and validation then compares the overridden form on both sides.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from ..errors import MigrationError
from .typemap import OVERRIDES

__all__ = ["load_overrides"]


def _read_toml(p: Path, what: str) -> dict[str, Any]:
    """The parsed TOML file ``p``; a MigrationError naming it as ``what`` if it is unusable."""
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MigrationError(f"{what} {p} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MigrationError(f"{what} {p} is not valid TOML: {exc}") from exc


def load_overrides(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read and check an overrides file; ``{"table.column": storage}``."""
    p = Path(path)
    doc = _read_toml(p, "type overrides file")
    columns = doc.get("columns", {})
    if not isinstance(columns, dict):
        raise MigrationError(f'{p}: [columns] must be a table of "table.column" = storage')
    out: dict[str, str] = {}
    for key, value in columns.items():
        if not isinstance(value, str) or value not in OVERRIDES or key.count(".") != 1:
            raise MigrationError(
                f'{p}: {key!r} = {value!r} is not valid (key "table.column", storage one of '
                f"{', '.join(sorted(OVERRIDES))})"
            )
        out[key] = value
    return out


# keys of a pipeline file (migrate/pipeline.example.toml) -> `edgestore migrate run` options
PIPELINE_KEYS = {
    "from": "source",
    "to": "target",
    "schema": "schema",
    "tables": "tables",
    "overrides": "overrides",
    "snapshot_dir": "snapshot_dir",
    "keep_snapshot": "keep_snapshot",
    "replace": "replace",
    "chunk_rows": "chunk_rows",
    "validate_source": "validate_source",
    "report": "report_path",
    "strict": "strict",
    "partition_checks": "partition_checks",
}


def load_pipeline(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read a pipeline file: the ``[run]`` table holds ``edgestore migrate run`` options.

    Relative paths in it (to, overrides, snapshot_dir, report) are relative to the file.
    """
    p = Path(path)
    doc = _read_toml(p, "pipeline file")
    run = doc.get("run")
    if not isinstance(run, dict):
        raise MigrationError(f"{p}: expected a [run] table")
    unknown = set(run) - PIPELINE_KEYS.keys()
    if unknown:
        raise MigrationError(f"{p}: unknown keys in [run]: {', '.join(sorted(unknown))}")
    out: dict[str, object] = {}
    for key, value in run.items():
        if key in ("to", "overrides", "snapshot_dir", "report") and isinstance(value, str):
            value = str((p.parent / value).resolve())
        if key == "tables" and isinstance(value, list):
            value = tuple(str(v) for v in value)
        out[PIPELINE_KEYS[key]] = value
    return out
