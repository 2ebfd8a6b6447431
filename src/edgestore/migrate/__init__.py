"""Postgres -> SQLite: plan, export (snapshot), import, validate.

Framework-free; the CLI (``edgestore migrate``) is a thin shell over these functions. psycopg is
needed only for the functions that read Postgres (extra ``edgestore[postgres]``).
"""

from __future__ import annotations

from .export import export_snapshot, read_plan
from .importer import ImportResult, import_snapshot
from .pipeline import run
from .plan import Plan
from .plan_text import render_text
from .progress import JsonProgress, LineProgress, LiveProgress, Progress, make_progress
from .snapshot import FORMAT_VERSION, Manifest, read_manifest
from .validate import validate

__all__ = [
    "FORMAT_VERSION",
    "ImportResult",
    "JsonProgress",
    "LineProgress",
    "LiveProgress",
    "Manifest",
    "Plan",
    "Progress",
    "export_snapshot",
    "import_snapshot",
    "make_progress",
    "read_manifest",
    "read_plan",
    "render_text",
    "run",
    "validate",
]
