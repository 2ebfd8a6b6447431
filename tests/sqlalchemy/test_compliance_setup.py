"""The compliance suite's own setup (tests_sqla/): what makes its comparison worth anything.

The built-in drivers must run SQLAlchemy's suite as SQLAlchemy's CI does, with SQLite's
provisioning ATTACHing ``test_schema`` on every connection of the engine the tests use; and
compare.py must refuse a run whose baseline ended in setup errors instead of comparing it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[2] / "tests_sqla"


def _copy_suite(to: Path) -> None:
    for path in SUITE.iterdir():
        if path.suffix in (".py", ".ini", ".cfg"):
            shutil.copy(path, to)


@pytest.mark.parametrize("driver", ["pysqlite", "aiosqlite"])
def test_builtin_drivers_reach_the_attached_test_schema(tmp_path: Path, driver: str) -> None:
    _copy_suite(tmp_path)
    junit = tmp_path / "out.xml"
    args = ["-q", "-k", "HasTableTest", f"--junitxml={junit}"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--dburi", f"sqlite+{driver}:///suite_{driver}.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    schema_test = cases.get("test_has_table_schema")
    assert schema_test is not None, run.stdout[-2000:]
    # No failure, error or skip: the table was created in and found in test_schema.
    assert list(schema_test) == [], run.stdout[-2000:]
    assert "unknown database test_schema" not in run.stdout


def test_compare_refuses_a_baseline_with_setup_errors(tmp_path: Path) -> None:
    def suite(driver: str, outcome: str) -> str:
        body = {"passed": "", "error": '<error message="unknown database test_schema"/>'}[outcome]
        # SQLAlchemy names a test class per config: <class>_<url drivername>[_async]_<version>.
        is_async = "_async" if driver.endswith("_async") else ""
        cls = f"test_suite.HasTableTest_sqlite+{driver}{is_async}_3_40_1"
        return (
            f'<testsuites><testsuite><testcase classname="{cls}" name="test_has_table">{body}'
            f'</testcase><testcase classname="{cls}" name="test_has_table_schema">'
            f"{body}</testcase></testsuite></testsuites>"
        )

    files = []
    for driver, outcome in [
        ("pysqlite", "error"),
        ("edgestore", "passed"),
        ("edgestore_async", "passed"),
    ]:
        path = tmp_path / f"suite_{driver}.xml"
        path.write_text(suite(driver, outcome))
        files.append(str(path))
    compare = [sys.executable, str(SUITE / "compare.py")]
    broken = subprocess.run([*compare, *files], capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1, broken.stdout
    assert "sqlite+pysqlite: 2 errors" in broken.stdout

    (tmp_path / "suite_pysqlite.xml").write_text(suite("pysqlite", "passed"))
    clean = subprocess.run([*compare, *files], capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stdout
