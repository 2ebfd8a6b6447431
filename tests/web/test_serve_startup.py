"""`edgestore serve` and `edgestore sql` refuse clearly before they serve anything.

A busy port, a database another server is serving, a missing or read-only directory and a
missing schemas directory are each one line on stderr and a non-zero exit, before the server
prints that it is serving. Every check runs the real command in a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import EdgestoreServer, free_port

CLI = [sys.executable, "-c", "from edgestore.cli import main; main()"]
# A command that should fail at once gets this long before the test calls it a hang.
HANG_BOUND = 30.0


def run_cli(*args: str, cwd: Path, timeout: float = HANG_BOUND) -> tuple[int | None, str]:
    """(exit code, or None if it was still running after ``timeout``; combined output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGESTORE_")}
    env["EDGESTORE_ACCESS_LOG"] = "false"
    proc = subprocess.Popen(
        [*CLI, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        return None, out.decode(errors="replace")


def test_busy_port_is_refused(tmp_path: Path) -> None:
    with EdgestoreServer(tmp_path / "first.db") as first:
        code, out = run_cli(
            "serve", "--port", str(first.port), "--db", str(tmp_path / "second.db"), cwd=tmp_path
        )
        assert code not in (None, 0), f"a second server started on a busy port:\n{out}"
        assert f"port {first.port} on 127.0.0.1 is already in use" in out
        assert "serving" not in out
        assert httpx.get(first.url + "/health", timeout=10).status_code == 200


def test_second_server_on_the_same_database_names_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with EdgestoreServer(db) as first:
        assert first.proc is not None
        code, out = run_cli("serve", "--port", str(free_port()), "--db", str(db), cwd=tmp_path)
        assert code not in (None, 0), f"a second server served the same file:\n{out}"
        assert f"is already being served by process {first.proc.pid}" in out
        assert "serving" not in out
    # The first server released its lock when it stopped: serving the file again works.
    with EdgestoreServer(db) as again:
        assert httpx.get(again.url + "/health", timeout=10).status_code == 200


def test_missing_directory_is_not_created_unless_asked(tmp_path: Path) -> None:
    db = tmp_path / "missing" / "dir" / "x.db"
    for command in (["serve", "--port", str(free_port())], ["sql", "SELECT 1"]):
        code, out = run_cli(*command, "--db", str(db), cwd=tmp_path)
        assert code == 1, out
        assert f"directory '{db.parent}' of the database '{db}' does not exist" in out
        assert "--create-dirs" in out
        assert not (tmp_path / "missing").exists()
    code, out = run_cli("sql", "SELECT 41 + 1 AS n", "--db", str(db), "--create-dirs", cwd=tmp_path)
    assert code == 0, out
    assert "42" in out
    assert db.exists()


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody can create files in, root included (root ignores mode bits, so
    root makes it immutable)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    immutable = os.geteuid() == 0
    if immutable:
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("running as root without chattr: no way to make a read-only directory")
        if subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode:
            pytest.skip("running as root and chattr +i is not permitted here")
    else:
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield directory
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        else:
            directory.chmod(stat.S_IRWXU)


def test_read_only_directory_says_wal_needs_it_writable(
    tmp_path: Path, read_only_dir: Path
) -> None:
    db = read_only_dir / "x.db"
    for command in (["serve", "--port", str(free_port())], ["sql", "SELECT 1"]):
        code, out = run_cli(*command, "--db", str(db), cwd=tmp_path)
        assert code == 1, out
        assert f"directory '{read_only_dir}' is not writable" in out
        assert "WAL mode needs a writable directory" in out
        assert len(out.strip().splitlines()) == 1, out


def test_missing_schemas_dir_fails_in_one_line_before_serving(tmp_path: Path) -> None:
    missing = tmp_path / "no-schemas"
    code, out = run_cli(
        "serve",
        "--port",
        str(free_port()),
        "--db",
        str(tmp_path / "x.db"),
        "--schemas",
        str(missing),
        cwd=tmp_path,
    )
    assert code == 1, out
    assert out.strip() == f"Error: schemas directory '{missing}' does not exist"


def test_broken_schema_file_does_not_stop_sql(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    code, out = run_cli("sql", "CREATE TABLE kept(v)", "--db", str(db), cwd=tmp_path)
    assert code == 0, out
    schemas = tmp_path / "schemas"  # the default directory, picked up from the cwd
    schemas.mkdir()
    (schemas / "0001_broken.sql").write_text("CREATE TABLE oops(;\n")
    code, out = run_cli(
        "sql", "SELECT name FROM sqlite_master WHERE name = 'kept'", "--db", str(db), cwd=tmp_path
    )
    assert code == 0, out
    assert "warning: schemas not applied: 0001_broken.sql" in out
    assert "kept" in out


def test_lock_file_is_removed_after_a_clean_stop(tmp_path: Path) -> None:
    db = tmp_path / "clean.db"
    server = EdgestoreServer(db).start()
    try:
        assert (tmp_path / "clean.db.lock").exists()
        assert server.stop() == 0
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.kill()
    assert not (tmp_path / "clean.db.lock").exists()
