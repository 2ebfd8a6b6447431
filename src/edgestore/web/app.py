"""The Litestar application factory.

``create_app()`` opens the Store from settings at startup (or uses the one given, which the
caller then owns and closes), starts the memory monitor, and closes both at shutdown: the
store's close finishes queued writes and checkpoints the WAL, so a stopped server leaves a
complete ``.db`` file. Route modules receive an :class:`AppState` and close over it.
"""

from __future__ import annotations

import importlib
import importlib.util
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
from ..tables import Catalog
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

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["AppState", "create_app"]

log = logging.getLogger("edgestore.web")

# Route modules other engineers own; included when present.
_OPTIONAL_ROUTE_MODULES = ("edgestore.web.hrana_routes", "edgestore.web.sync_routes")


def _optional_routes(state: AppState) -> list[ControllerRouterHandler]:
    handlers: list[ControllerRouterHandler] = []
    for name in _OPTIONAL_ROUTE_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        handlers.extend(module.route_handlers(state))
    return handlers


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
    schema = Catalog()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from .. import storage

        owned = store is None
        opened = store if store is not None else await storage.open(settings=settings)
        if owned and settings.replication and not settings.replica_of:
            # A served primary can be followed by libSQL replicas: no automatic checkpoints,
            # the WAL outlives connections, and the idle checkpoint becomes a generation change.
            from ..storage.replication import ReplicationPrimary

            await ReplicationPrimary.attach(opened)
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
