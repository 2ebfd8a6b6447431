"""The Litestar application factory.

``create_app()`` opens the Store from settings at startup (or uses the one given, which the
caller then owns and closes), starts the memory monitor, and closes both at shutdown: the
store's close finishes queued writes and checkpoints the WAL, so a stopped server leaves a
complete ``.db`` file. Route modules receive an :class:`AppState` and close over it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from .._version import __version__
from ..auth import Authenticator
from ..config import Settings
from . import hrana_routes, sync_routes
from .errors import exception_handlers
from .metrics import Metrics
from .middleware import edge_middleware
from .routes import backup as backup_routes
from .routes import cache as cache_routes
from .routes import dashboard as dashboard_routes
from .routes import ops as ops_routes
from .routes import sql as sql_routes
from .routes import tables as table_routes
from .state import AppState
from .tableinfo import SchemaCache

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["AppState", "create_app"]

log = logging.getLogger("edgestore.web")


def _optional_routes(state: AppState) -> list[ControllerRouterHandler]:
    """The Hrana (libSQL wire protocol) and replication sync routes."""
    return [*hrana_routes.route_handlers(state), *sync_routes.route_handlers(state)]


def _start_memory_monitor(settings: Settings, store: Store) -> Any:
    try:
        from ..memory import MemoryMonitor
    except ImportError:  # memory/ not built in this checkout: run without pressure levels
        log.warning("edgestore.memory is unavailable; running without the memory monitor")
        return None
    return MemoryMonitor(settings, store)


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Litestar:
    """The edgestore HTTP app. Without ``store`` it opens ``settings.db_path`` at startup."""
    if settings is None:
        settings = store.settings if store is not None else Settings.load()
    metrics = Metrics()
    metrics.access_log = settings.access_log
    state = AppState(settings=settings, authenticator=Authenticator(settings), metrics=metrics)
    schema = SchemaCache()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from ..opening import open_with_settings
        from ..storage.factory import resolve_settings

        owned = store is None
        # A served node opens with its replication role (plain, primary or replica).
        opened = (
            store
            if store is not None
            else await open_with_settings(resolve_settings(None, settings, {}), serve_replicas=True)
        )
        state.store_or_none = opened
        schema.attach(opened)
        memory = _start_memory_monitor(settings, opened)
        if memory is not None:
            await memory.start()
        state.memory = memory
        try:
            yield
        finally:
            # Roll back abandoned Hrana streams first: one inside a transaction pins the
            # writer, and closing the store would wait for it.
            from . import hrana_routes

            await hrana_routes.close_streams(state)
            if memory is not None:
                await memory.stop()
            schema.detach()
            if owned:
                # Finishes queued group commits, then checkpoints (TRUNCATE) and closes.
                await opened.close()
            state.store_or_none = None

    handlers: list[ControllerRouterHandler] = [
        *sql_routes.route_handlers(state),
        *table_routes.route_handlers(state, schema),
        *cache_routes.route_handlers(state),
        *ops_routes.route_handlers(state),
        *backup_routes.route_handlers(state),
        *dashboard_routes.route_handlers(),
        *_optional_routes(state),
    ]
    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        middleware=[edge_middleware(state)],
        exception_handlers=exception_handlers(),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="edgestore",
            version=__version__,
            description=(
                "SQLite over HTTP. Values are JSON-native except integers beyond 2**53 "
                '({"$int": "..."}), blobs ({"$blob": "<base64>"}) and infinite reals '
                '({"$float": "Infinity"}); parameters accept the same forms.'
            ),
        ),
        logging_config=None,
        debug=False,
    )
    app.state["edgestore"] = state
    return app
