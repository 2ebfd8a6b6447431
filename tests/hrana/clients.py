"""Real clients run to their end in a subprocess, with a time bound: ``@libsql/client`` under
node (the scripts in tests/js) and Python scripts around the blocking ``libsql`` binding.

Every client script prints its report as the last line of its output, one JSON value.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parents[1] / "js"
NODE = shutil.which("node")


def install_js_packages() -> None:
    """Skip without node; install tests/js's pinned npm packages when they are missing."""
    if NODE is None:
        pytest.skip("node is not installed on this machine (.ci/run installs it)")
    if not (JS / "node_modules" / "@libsql" / "client").is_dir():
        subprocess.run(["bash", str(JS / "install.sh")], check=True, timeout=600)


async def run_client(*cmd: str | Path, cwd: Path | None = None, limit: float = 120) -> Any:
    """Run ``cmd`` (killed after ``limit`` seconds), check it exited 0, return its report."""
    proc = await asyncio.create_subprocess_exec(
        *(str(part) for part in cmd),
        cwd=None if cwd is None else str(cwd),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (out.decode()[-2000:], err.decode()[-4000:])
    return json.loads(out.decode().strip().splitlines()[-1])


async def run_node(script: str, *args: str, limit: float = 120) -> Any:
    """``node tests/js/<script> <args>`` (call :func:`install_js_packages` first); its report."""
    assert NODE is not None
    return await run_client(NODE, JS / script, *args, cwd=JS, limit=limit)
