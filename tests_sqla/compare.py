"""Compare the suite's outcomes per backend: what passes on pysqlite and not on edgestore.

Usage: ``python compare.py suite_*.xml`` (the JUnit XML of one pytest session per --dburi:
in a session with several --dburi SQLAlchemy runs its ``__sparse_driver_backend__`` classes, a
third of the suite, on one driver per SQLite version only, so edgestore_async would skip them).
Prints the outcome counts of every driver, then, for each edgestore dialect, the tests that
passed on ``sqlite+pysqlite`` and did not pass there, grouped by reason (the explanation below,
or requirements.py's skip reason), then the tests that pass on edgestore and fail on pysqlite.
Exits 1 if a test that passed on pysqlite failed, errored or was not collected on edgestore
without an explanation; tests skipped on edgestore by requirements.py are differences by
design, printed with requirements.py's reason.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

_BACKEND = re.compile(r"_sqlite\+(?P<driver>[a-z_]+?)(?:_async)?_\d+(?:_\d+)*$")
# pytest's skip message: "'<node id> (call)' : <reason>".
_SKIP_PREFIX = re.compile(r"^'[^']*\((?:setup|call|teardown)\)' : ")
BASELINE = "pysqlite"
NO_ATTACH = (
    "uses config.test_schema (SQLite provisioning ATTACHes it on every connection) without "
    "requiring 'schemas'; edgestore's statement policy refuses ATTACH, so there is no "
    "test_schema to create or reflect in"
)
# Differences by design, each with its reason: (regex on "Class::test[params]", reason).
EXPLAINED: tuple[tuple[str, str], ...] = (
    # The fixture use_schema_fixture is the first parameter of these tests: True is test_schema.
    (r"^ComponentReflectionTestExtra::\w+\[True\b", NO_ATTACH),
    # test_metadata[<views>-<exclusions>-<use_schema>]: reflects config.test_schema.
    (r"^ComponentReflectionTest::test_metadata\[.*-True\]$", NO_ATTACH),
    # A class whose __requires__ is closed is not collected at all, so it has no skip reason.
    (
        r"^SameNamedSchemaTableTest::",
        "the class requires 'schemas' (closed in requirements.py): edgestore's statement "
        "policy refuses ATTACH, so there is no test_schema",
    ),
)
EDGESTORE = ("edgestore", "edgestore_async")
OUTCOMES = ("passed", "failed", "error", "skipped")
# {(test class, test name): (outcome, detail)} of one driver.
Cases = dict[tuple[str, str], tuple[str, str]]


def _detail(node: ET.Element) -> str:
    lines = (node.get("message") or "").strip().splitlines()
    return _SKIP_PREFIX.sub("", lines[0])[:200] if lines else ""


def outcomes(*paths: str) -> dict[str, Cases]:
    """``{driver: {(class, test): (outcome, detail)}}`` from JUnit XML files."""
    by_driver: dict[str, Cases] = {}
    cases = (case for path in paths for case in ET.parse(path).getroot().iter("testcase"))
    for case in cases:
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
                detail = _detail(node)
                break
        by_driver.setdefault(match["driver"], {})[(cls, case.get("name", ""))] = (
            outcome,
            detail,
        )
    return by_driver


def explanation(cls: str, name: str) -> str | None:
    return next((why for rx, why in EXPLAINED if re.search(rx, f"{cls}::{name}")), None)


def _print_group(tests: list[tuple[str, str]]) -> None:
    """One line per test function, its parametrisations counted."""
    per_function = Counter(f"{cls}::{name.split('[', 1)[0]}" for cls, name in tests)
    for function, n in sorted(per_function.items()):
        print(f"      {function}" + (f" (x{n})" if n > 1 else ""))


def compare(base: Cases, driver: str, cases: Cases) -> int:
    """Print the differences of one edgestore dialect; the number of unexplained failures."""
    not_collected = ("not collected", "")
    worse = [
        (test, cases.get(test, not_collected))
        for test, (outcome, _) in sorted(base.items())
        if outcome == "passed" and cases.get(test, not_collected)[0] != "passed"
    ]
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    unexplained: list[tuple[tuple[str, str], str, str]] = []
    for (cls, name), (outcome, detail) in worse:
        reason = explanation(cls, name)
        if reason is None and outcome != "skipped":
            unexplained.append(((cls, name), outcome, detail))
        else:
            groups[(outcome, reason or detail)].append((cls, name))
    print(f"\n== passed on pysqlite, not on sqlite+{driver}: {len(worse)}")
    for (outcome, reason), tests in sorted(groups.items(), key=lambda g: -len(g[1])):
        print(f"  {len(tests)} {outcome}: {reason}")
        _print_group(tests)
    for (cls, name), outcome, detail in unexplained:
        print(f"  UNEXPLAINED {outcome} {cls}::{name}  -- {detail}")
    better = [
        (test, base[test])
        for test, (outcome, _) in sorted(cases.items())
        if outcome == "passed" and test in base and base[test][0] in ("failed", "error")
    ]
    print(f"== passed on sqlite+{driver}, failed on pysqlite: {len(better)}")
    for (cls, name), (outcome, detail) in better:
        print(f"  {cls}::{name}  -- pysqlite {outcome}: {detail}")
    return len(unexplained)


def main(*paths: str) -> int:
    results = outcomes(*paths)
    for driver, cases in sorted(results.items()):
        counts = Counter(outcome for outcome, _ in cases.values())
        print(f"sqlite+{driver}: " + ", ".join(f"{counts[k]} {k}" for k in OUTCOMES))
    base = results.get(BASELINE, {})
    broken = 0
    for driver, cases in sorted(results.items()):
        # Errors are setup failures (provisioning, fixtures): such a test compared nothing, as
        # when pysqlite lost its ATTACHed test_schema and hundreds of tests errored unnoticed.
        errors = [(test, detail) for test, (outcome, detail) in cases.items() if outcome == "error"]
        if errors:
            (cls, name), detail = min(errors)
            print(f"sqlite+{driver}: {len(errors)} errors, e.g. {cls}::{name}: {detail}")
            broken += 1
    if not any(outcome == "passed" for outcome, _ in base.values()):
        print(f"sqlite+{BASELINE}: no test passed; the run did not work")
        broken += 1
    for driver in EDGESTORE:
        if driver not in results:
            print(f"sqlite+{driver}: not in this run")
            broken += 1
            continue
        broken += compare(base, driver, results[driver])
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
