"""Headless Chromium for the browser tests (the dashboard, /schema offline, origins).

A throwaway profile per run and none of Chromium's own traffic (sync, updates, background
requests), so a page reaches only what the test serves.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "Chromium is not installed (apt-get install chromium)"
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""No host name resolves: only the server on the loopback address can be reached, so a page
that needs a CDN fails."""


def headless(profile: Path) -> list[str]:
    """The command line up to the page's arguments."""
    assert CHROMIUM is not None
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def chromium(url: str, profile: Path, *extra: str) -> str:
    """Run headless Chromium offline on ``url`` (6 s of virtual time: several polls of a page
    that refreshes itself); returns its stdout (the DOM with ``--dump-dom``)."""
    out = subprocess.run(
        [
            *headless(profile),
            "--disable-quic",
            "--hide-scrollbars",
            OFFLINE,
            "--virtual-time-budget=6000",
            *extra,
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout
