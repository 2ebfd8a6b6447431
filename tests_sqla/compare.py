"""Compare the suite's outcomes per backend: what passes on pysqlite and not on edgestore.

Usage: ``python compare.py results.xml`` (the JUnit XML of one run with all four --dburi).
Prints, for each edgestore dialect, every test that passed on ``sqlite+pysqlite`` and did not
pass there (with the skip reason or the error), then the tests that pass on edgestore and fail
on pysqlite. Exits 1 if a test that passed on pysqlite failed or errored on edgestore; tests
skipped on edgestore by requirements.py are differences by design, listed with their reason.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter

_BACKEND = re.compile(r"_sqlite\+(?P<driver>[a-z_]+?)(?:_async)?_\d+(?:_\d+)*$")
BASELINE = "pysqlite"
# Differences by design, each with its reason: (regex on "Class::test", reason).
EXPLAINED: tuple[tuple[str, str], ...] = (
    (
        r"ComponentReflectionTestExtra::.*\[True\b|ComponentReflectionTest::test_metadata\[.*-True\]",
        "uses config.test_schema (an ATTACHed file) without requiring 'schemas'; "
        "edgestore's statement policy refuses ATTACH",
    ),
)
EDGESTORE = ("edgestore", "edgestore_async")


def outcomes(path: str) -> dict[str, dict[tuple[str, str], tuple[str, str]]]:
    """``{driver: {(class, test): (outcome, detail)}}`` from a JUnit XML file."""
    by_driver: dict[str, dict[tuple[str, str], tuple[str, str]]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname = case.get("classname", "")
        match = _BACKEND.search(classname)
        if match is None:
            continue
        cls = classname[: match.start()].rsplit(".", 1)[-1]
        outcome, detail = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                detail = (node.get("message") or "").strip().splitlines()[0:1]
                detail = detail[0][:160] if detail else ""
                break
        by_driver.setdefault(match["driver"], {})[(cls, case.get("name", ""))] = (
            outcome,
            detail,
        )
    return by_driver


def main(path: str) -> int:
    results = outcomes(path)
    for driver, cases in sorted(results.items()):
        counts = Counter(outcome for outcome, _ in cases.values())
        print(f"sqlite+{driver}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    base = results.get(BASELINE, {})
    broken = 0
    if not any(outcome == "passed" for outcome, _ in base.values()):
        print(f"sqlite+{BASELINE}: no test passed; the run did not work")
        broken += 1
    for driver in EDGESTORE:
        cases = results.get(driver)
        if cases is None:
            print(f"sqlite+{driver}: not in this run")
            broken += 1
            continue
        worse = [
            (test, cases.get(test, ("missing", "")))
            for test, (outcome, _) in sorted(base.items())
            if outcome == "passed" and cases.get(test, ("missing", ""))[0] != "passed"
        ]
        better = [
            (test, base[test])
            for test, (outcome, _) in sorted(cases.items())
            if outcome == "passed" and test in base and base[test][0] in ("failed", "error")
        ]
        print(f"\n== passed on pysqlite, not on sqlite+{driver}: {len(worse)}")
        for (cls, name), (outcome, detail) in worse:
            if outcome == "missing":
                # SQLAlchemy runs __sparse_driver_backend__ classes on one driver per
                # database version: the other edgestore dialect ran it.
                continue
            reason = next((why for rx, why in EXPLAINED if re.search(rx, f"{cls}::{name}")), None)
            print(f"  {outcome:8} {cls}::{name}  -- {reason or detail}")
            if outcome in ("failed", "error") and reason is None:
                broken += 1
        print(f"== passed on sqlite+{driver}, failed on pysqlite: {len(better)}")
        for (cls, name), (outcome, detail) in better:
            print(f"  {cls}::{name}  -- pysqlite {outcome}: {detail}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
