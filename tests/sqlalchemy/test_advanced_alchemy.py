"""advanced-alchemy's Litestar plugin on sqlite+edgestore_async, served beside edgestore's app.

One Litestar app: a repository/service CRUD API through advanced-alchemy, and edgestore's own
HTTP API mounted under /edgestore, both on one shared store (one pool, one writer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
    base,
    repository,
    service,
)
from litestar import Litestar, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.handlers import asgi
from litestar.params import JSONBody, PathParameter
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send
from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from edgestore.sqlalchemy import registry, shared_store
from edgestore.web.app import create_app


class Author(base.BigIntBase):
    __tablename__ = "authors"
    name: Mapped[str] = mapped_column(String(100))


class AuthorRepository(repository.SQLAlchemyAsyncRepository[Author]):
    model_type = Author


class AuthorService(service.SQLAlchemyAsyncRepositoryService[Author]):
    repository_type = AuthorRepository


DbSession = NamedDependency[AsyncSession]
"""advanced-alchemy's plugin provides the request's session as the dependency "db_session"."""
AuthorId = Annotated[int, PathParameter()]


def _out(author: Author) -> dict[str, Any]:
    return {"id": author.id, "name": author.name}


@post("/authors")
async def create_author(db_session: DbSession, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return _out(await AuthorService(session=db_session).create(data))


@get("/authors")
async def list_authors(db_session: DbSession) -> list[dict[str, Any]]:
    return [_out(a) for a in await AuthorService(session=db_session).get_many()]


@get("/authors/{author_id:int}")
async def get_author(db_session: DbSession, author_id: AuthorId) -> dict[str, Any]:
    return _out(await AuthorService(session=db_session).get(author_id))


@patch("/authors/{author_id:int}")
async def rename_author(
    db_session: DbSession, author_id: AuthorId, data: JSONBody[dict[str, Any]]
) -> dict[str, Any]:
    return _out(await AuthorService(session=db_session).update(data, item_id=author_id))


@delete("/authors/{author_id:int}")
async def delete_author(db_session: DbSession, author_id: AuthorId) -> None:
    await AuthorService(session=db_session).delete(author_id)


def build_app(db_path: Path) -> Litestar:
    """advanced-alchemy's plugin plus edgestore's HTTP app, on one shared store."""
    url = f"sqlite+edgestore_async:///{db_path}"
    config = SQLAlchemyAsyncConfig(
        connection_string=url,
        create_all=True,
        metadata=base.orm_registry.metadata,
        before_send_handler="autocommit",
        session_config=AsyncSessionConfig(expire_on_commit=False),
    )
    mounted: dict[str, Litestar] = {}

    @asynccontextmanager
    async def edgestore_api(app: Litestar) -> AsyncIterator[None]:
        async with shared_store(url) as store:
            inner = create_app(store=store)
            async with inner.lifespan():
                mounted["app"] = inner
                yield

    @asgi("/edgestore", is_mount=True, copy_scope=True)
    async def edgestore_routes(scope: Scope, receive: Receive, send: Send) -> None:
        await mounted["app"](scope, receive, send)

    return Litestar(
        route_handlers=[
            create_author,
            list_authors,
            get_author,
            rename_author,
            delete_author,
            edgestore_routes,
        ],
        plugins=[SQLAlchemyPlugin(config=config)],
        lifespan=[edgestore_api],
    )


async def test_repository_service_crud_beside_edgestore_api(tmp_path: Path) -> None:
    app = build_app(tmp_path / "app.db")
    # A loopback Host, as a real local client sends: other hosts get 421 (DNS rebinding).
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        created = await client.post("/authors", json={"name": "Ada"})
        assert created.status_code == 201, created.text
        ada = created.json()
        await client.post("/authors", json={"name": "Grace"})
        assert (await client.get(f"/authors/{ada['id']}")).json() == ada
        renamed = await client.patch(f"/authors/{ada['id']}", json={"name": "Ada Lovelace"})
        assert renamed.json()["name"] == "Ada Lovelace"

        # edgestore's own API, mounted in the same app, reads what the ORM committed ...
        response = await client.post(
            "/edgestore/api/v1/query", json={"sql": "SELECT name FROM authors ORDER BY id"}
        )
        assert response.status_code == 200, response.text
        assert [row[0] for row in response.json()["rows"]] == ["Ada Lovelace", "Grace"]
        # ... and the ORM reads what edgestore's API wrote.
        response = await client.post(
            "/edgestore/api/v1/execute",
            json={"sql": "INSERT INTO authors (name) VALUES (?)", "params": ["Edsger"]},
        )
        assert response.status_code == 200, response.text
        listed = await client.get("/authors")
        assert listed.status_code == 200, listed.text
        names = [a["name"] for a in listed.json()]
        assert names == ["Ada Lovelace", "Grace", "Edsger"]

        assert (await client.delete(f"/authors/{ada['id']}")).status_code == 204
        assert (await client.get(f"/authors/{ada['id']}")).status_code == 404
        stats = (await client.get("/edgestore/api/v1/stats")).json()
        assert stats["pool_max_connections"] == 3
        # One store (one writer, two readers at most) served both APIs.
        assert [s.path for s in registry.open_stores()].count(tmp_path / "app.db") == 1
