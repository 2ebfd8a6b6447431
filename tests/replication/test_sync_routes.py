"""The sync routes inside the real app, in process (catches route-declaration problems that a
subprocess would only log)."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from edgestore.config import Settings
from edgestore.web.app import create_app


def test_sync_routes_in_the_app(tmp_path: Path) -> None:
    app = create_app(Settings(db_path=tmp_path / "p.db", schemas_dir=None))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        info = client.get("/info")
        assert info.status_code == 200
        generation = info.json()["current_generation"]
        assert client.get(f"/export/{generation}").content[:16] == b"SQLite format 3\x00"
        nothing = client.get(f"/sync/{generation}/1/129")
        assert nothing.status_code == 400
        assert nothing.json() == {"generation": generation}
        assert client.get(f"/export/{generation + 5}").status_code == 404
        assert client.get(f"/sync/{generation + 5}/1/129").status_code == 404
        refused = client.post(f"/sync/{generation}/1/2/some-baton", content=b"")
        assert refused.status_code == 405
        assert client.get("/replication").json()["generation"] == generation
