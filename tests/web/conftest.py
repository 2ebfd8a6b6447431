"""Fixtures for the HTTP service tests: an app on a real SQLite file under tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from edgestore.config import Settings
from edgestore.web.app import create_app

REPO = Path(__file__).resolve().parents[2]

AppFactory = Callable[..., TestClient[Any]]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_path": tmp_path / "web.db",
        "schemas_dir": REPO / "schemas",
        "memory_sample_interval": 0.1,
        "access_log": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[AppFactory]:
    """``app_client(**settings)`` -> a started TestClient; all are closed at teardown."""
    clients: list[TestClient[Any]] = []

    def factory(**overrides: Any) -> TestClient[Any]:
        settings = make_settings(tmp_path, **overrides)
        # A loopback Host, as a real local client sends: other hosts are refused (DNS rebinding).
        client: TestClient[Any] = TestClient(
            create_app(settings), base_url="http://127.0.0.1", raise_server_exceptions=False
        )
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(app_client: AppFactory) -> TestClient[Any]:
    return app_client()
