"""Killed at any point, the same `migrate run` command run again finishes the job.

The run is SIGKILLed (a real kill, in a child process) right before or after one named step:
mid-export, after the manifest, after the partial file is stamped, while views are verified,
inside the transaction that marks the import complete, between marking it complete and the
rename, after the rename and before or during validation, while the result is stored and
while the snapshot is removed. The re-run must exit 0 with a validated target, and leave no
partial file or snapshot behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from edgestore.migrate import validate

# Runs `edgestore migrate ...` with a SIGKILL at the nth call of one function (module:qualname)
_CHILD = """
import importlib, os, signal, sys
target, when, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
module, qualname = target.split(":")
owner = importlib.import_module(module)
*path, name = qualname.split(".")
for part in path:
    owner = getattr(owner, part)
original = getattr(owner, name)
calls = 0

def wrapper(*args, **kwargs):
    global calls
    calls += 1
    if calls == nth and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    if calls == nth and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, name, wrapper)
from edgestore.cli import main
sys.exit(main(sys.argv[4:]))
"""

POINTS = [
    ("edgestore.migrate.streaming:StreamingLoad.chunk_done", "after", 3),
    ("edgestore.migrate.export:_export_table", "before", 2),
    ("edgestore.migrate.export:write_manifest", "after", 1),
    ("edgestore.migrate.streaming:StreamingLoad.finish", "after", 1),
    ("edgestore.migrate.importer:verify_views", "before", 1),
    ("edgestore.migrate.views:hash_rows", "after", 2),
    ("edgestore.migrate.importer:_install_triggers", "after", 1),
    ("edgestore.migrate.importer:_swap_into_place", "before", 1),
    ("edgestore.migrate.importer:_swap_into_place", "after", 1),
    ("edgestore.migrate.pipeline:validate", "before", 1),
    ("edgestore.migrate.validate:_hash", "after", 3),
    ("edgestore.migrate.pipeline:_store_report", "before", 1),
    ("edgestore.migrate.pipeline:_store_report", "after", 1),
    ("shutil:rmtree", "before", 1),
]


@pytest.mark.parametrize(("point", "when", "nth"), POINTS)
def test_killed_run_is_finished_by_the_same_command(
    shop_dsn: str, tmp_path: Path, point: str, when: str, nth: int
) -> None:
    target = tmp_path / "shop.db"
    args = ["migrate", "run", "--from", shop_dsn, "--to", str(target), "--chunk-rows", "50"]
    killed = subprocess.run(
        [sys.executable, "-c", _CHILD, point, when, str(nth), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9, (killed.returncode, killed.stderr)  # the kill point was hit
    code = "import sys; from edgestore.cli import main; sys.exit(main())"
    again = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "validation: OK" in again.stdout
    assert "Traceback" not in again.stderr
    assert not target.with_name("shop.db.partial").exists()
    assert not target.with_name("shop.db.snapshot").exists()
    assert validate(shop_dsn, target)["ok"]
    db = apsw.Connection(str(target))
    views = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'view'")}
    assert views == {"big_payments", "customer_list", "film_titles_by_rating", "sales_by_film"}
    triggers = db.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'").fetchone()
    assert triggers == (7,)
    state = db.execute(
        "SELECT value FROM sqlite_edgestore_migration WHERE key = 'state'"
    ).fetchone()
    assert state == ("complete",)
