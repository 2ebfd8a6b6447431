"""``@libsql/client`` 0.18 (npm) against edgestore over http:// and ws://, from node."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgestore.auth import hash_token

from .conftest import Server, StartServer, assert_pool_idle

JS = Path(__file__).resolve().parents[1] / "js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed on this machine")


@pytest.fixture(scope="module")
def js_client() -> Path:
    if not (JS / "node_modules" / "@libsql" / "client").is_dir():
        subprocess.run(["bash", str(JS / "install.sh")], check=True, timeout=600)
    return JS / "hrana_client.mjs"


async def run_node(script: Path, *args: str, limit: float = 120) -> str:
    assert NODE is not None
    proc = await asyncio.create_subprocess_exec(
        NODE,
        str(script),
        *args,
        cwd=str(JS),
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
    return out.decode()


@pytest.mark.parametrize("scheme", ["http", "ws"])
async def test_js_client(scheme: str, server: Server, js_client: Path) -> None:
    url = server.url if scheme == "http" else server.ws_url
    report = json.loads((await run_node(js_client, url)).strip().splitlines()[-1])
    assert report["ok"] is True
    assert report["constraintCode"] == "SQLITE_CONSTRAINT"
    assert report["noTableCode"] == "SQLITE_ERROR"
    table = f"js_{scheme}"
    names = await server.store.query(f"SELECT name FROM {table} ORDER BY id", cache=False)
    assert [r[0] for r in names.values] == [
        "alpha",
        "beta",
        "gamma",
        "tx-commit",
        "tx-batch-1",
        "tx-batch-2",
    ]
    await assert_pool_idle(server.store)


@pytest.mark.parametrize("scheme", ["http", "ws"])
async def test_js_client_with_a_token(
    scheme: str, start_server: StartServer, js_client: Path
) -> None:
    server = await start_server(auth_tokens=(f"rw:{hash_token('js-secret')}",))
    url = server.url if scheme == "http" else server.ws_url
    report = json.loads((await run_node(js_client, url, "js-secret")).strip().splitlines()[-1])
    assert report["ok"] is True
    await assert_pool_idle(server.store)
