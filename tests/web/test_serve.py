"""`edgestore serve`: the real server process, its bind policy and its access log."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from edgestore.auth import hash_token
from edgestore.cli import serve as serve_module
from edgestore.cli.main import main as cli
from edgestore.cli.serve import is_loopback
from edgestore.config import Settings
from tests.server import EdgestoreServer


def test_is_loopback() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.1", "example.com", "192.168.1.2"):
        assert not is_loopback(host), host


@pytest.fixture
def captured_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Settings]]:
    """Stop `serve` right before it starts granian; record the settings it would use."""
    runs: list[Settings] = []
    monkeypatch.setattr(serve_module, "_run", runs.append)
    saved = dict(os.environ)  # serve exports its options as EDGESTORE_* for its workers
    for name in (
        "EDGESTORE_HOST",
        "EDGESTORE_AUTH_TOKENS",
        "EDGESTORE_JWT_PUBLIC_KEY",
        "EDGESTORE_ALLOW_PUBLIC_WITHOUT_AUTH",
    ):
        monkeypatch.delenv(name, raising=False)
    yield runs
    os.environ.clear()
    os.environ.update(saved)


def test_refuses_public_bind_without_auth(captured_run: list[Settings]) -> None:
    out = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert out.exit_code != 0
    assert "refusing to bind 0.0.0.0" in out.output
    assert captured_run == []


def test_public_bind_with_override_is_loud(captured_run: list[Settings]) -> None:
    out = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--allow-public-without-auth"])
    assert out.exit_code == 0, out.output
    assert "WITHOUT AUTHENTICATION" in out.output
    assert captured_run[0].host == "0.0.0.0"


def test_public_bind_with_auth_is_fine(
    captured_run: list[Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESTORE_AUTH_TOKENS", f"rw:{hash_token('t')}")
    out = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "9999"])
    assert out.exit_code == 0, out.output
    assert "WITHOUT" not in out.output
    assert captured_run[0].port == 9999


def test_bad_option_is_a_clean_error(captured_run: list[Settings]) -> None:
    out = CliRunner().invoke(cli, ["serve", "--workers", "0"])
    assert out.exit_code != 0
    assert "workers" in out.output
    assert "Traceback" not in out.output


def test_real_server_round_trip_and_access_log(tmp_path: Path) -> None:
    db = tmp_path / "served.db"
    with EdgestoreServer(db, env={"EDGESTORE_ACCESS_LOG": "true"}) as server:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            r = http.post("/api/v1/tables/items/rows", json={"name": "served", "price": 1})
            assert r.status_code == 201, r.text
            rows = http.get("/api/v1/tables/items/rows").json()["rows"]
            assert [row["name"] for row in rows] == ["served"]
            assert http.get("/schema/openapi.json").status_code == 200
            assert http.get("/dashboard").status_code == 200
        code = server.stop()
    assert code == 0
    access: list[dict[str, Any]] = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            access.append(json.loads(line))
    routes = {(a["method"], a["route"], a["status"]) for a in access}
    assert ("POST", "/api/v1/tables/{table_name}/rows", 201) in routes
    assert all({"ts", "method", "path", "status", "ms", "client"} <= set(a) for a in access)
    assert db.exists()


def test_quick_start_defaults(tmp_path: Path) -> None:
    """README quick start: `edgestore serve` in a directory with schemas/, no flags."""
    import shutil

    from tests.server import REPO

    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    server = EdgestoreServer(tmp_path / "edgestore.db", schemas_dir=None)
    server.command = (
        lambda: [  # type: ignore[method-assign]
            *EdgestoreServer.command(server)[:3],
            "serve",
            "--port",
            str(server.port),
        ]
    )
    with server:
        r = httpx.get(server.url + "/api/v1/tables/items/rows", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"rows": [], "next": None}
    assert (tmp_path / "edgestore.db").exists()


def test_several_workers_need_replication_off(
    captured_run: list[Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGESTORE_REPLICATION", raising=False)
    out = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert out.exit_code != 0
    assert "replication" in out.output
    monkeypatch.setenv("EDGESTORE_REPLICATION", "false")
    out = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert out.exit_code == 0, out.output
    assert captured_run[0].workers == 2


def test_config_file_and_flags(captured_run: list[Settings], tmp_path: Path) -> None:
    config = tmp_path / "edgestore.toml"
    config.write_text("[edgestore]\nport = 9123\nmax_rows = 77\n")
    out = CliRunner().invoke(
        cli, ["serve", "--config", str(config), "--db", str(tmp_path / "c.db"), "--no-access-log"]
    )
    assert out.exit_code == 0, out.output
    settings = captured_run[0]
    assert (settings.port, settings.max_rows, settings.access_log) == (9123, 77, False)
    assert settings.db_path == tmp_path / "c.db"
    # The workers get the same settings through the environment.
    assert Settings.load() == settings


@pytest.mark.parametrize(("choice", "name"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_serve_runs_on_the_chosen_event_loop(tmp_path: Path, choice: str | None, name: str) -> None:
    # The default (auto) takes uvloop, which is a dependency on Linux; asyncio's own loop when
    # told. Both serve.
    env = {} if choice is None else {"EDGESTORE_EVENT_LOOP": choice}
    with EdgestoreServer(tmp_path / "loop.db", env=env) as server:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            r = http.post("/api/v1/tables/items/rows", json={"name": "loop", "price": 1})
            assert r.status_code == 201, r.text
        assert server.stop() == 0
    assert f"; event loop {name})" in server.log()


def test_loop_factory_names_the_loop() -> None:
    import asyncio

    import uvloop

    from edgestore.cli.server_runner import loop_factory

    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("asyncio") is asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
