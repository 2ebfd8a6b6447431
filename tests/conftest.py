"""Suite-wide fixtures and rules.

With ``EDGESTORE_NO_SKIP=1`` (set by ``.ci/run``) a skipped test fails instead: CI installs
everything the suite needs, so a skip there means something is missing, not optional.

Every process a test starts, the test stops: the pytest process makes itself a child
subreaper (Linux ``prctl``), so a descendant whose parent died (a granian worker whose master
was SIGKILLed) is re-parented here instead of to init. When the session ends, any descendant
still alive fails the run, is listed, and is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Generator
from pathlib import Path

import pytest

_PR_SET_CHILD_SUBREAPER = 36
# A process stopped with SIGTERM at the very end of a test may take a moment to exit.
_EXIT_GRACE_SECONDS = 10.0
_SUBREAPER = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            config.stash[_SUBREAPER] = True


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process visible in /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def live_descendants(root: int) -> list[int]:
    """Processes below ``root`` that have not exited (zombies are reaped, not counted)."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        if table[pid][1] == "Z":
            if table[pid][0] == root:
                # An orphan re-parented here: reap it (a Popen may have reaped it meanwhile).
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            continue
        found.append(pid)
    return found


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:300]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.stash.get(_SUBREAPER, False):
        return
    deadline = time.monotonic() + _EXIT_GRACE_SECONDS
    left = live_descendants(os.getpid())
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = live_descendants(os.getpid())
    if not left:
        return
    lines = [f"  pid {pid}: {_cmdline(pid)}" for pid in left]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = (
        f"{len(left)} process(es) started by the tests were still running at the end "
        "(now killed); every test must stop what it starts:\n" + "\n".join(lines)
    )
    if reporter is not None:
        reporter.write_sep("=", "leaked processes", red=True)
        reporter.write_line(message)
    else:
        print(message, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if (
        os.environ.get("EDGESTORE_NO_SKIP") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under EDGESTORE_NO_SKIP=1 (CI must run it): {reason}"
