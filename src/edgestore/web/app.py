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
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from .._version import __version__
from ..auth import Authenticator
from ..config import Settings
from .errors import exception_handlers
from .history import History
from .metrics import Metrics
from .middleware import edge_middleware
from .query_stats import QueryStats
from .routes import cache as cache_routes
from .routes import dashboard as dashboard_routes
from .routes import ops as ops_routes
from .routes import sql as sql_routes
from .routes import tables as table_routes
from .schema_page import schema_plugins
from .state import AppState
from .tableinfo import SchemaCache

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


def _start_memory_monitor(settings: Settings, store: Store, metrics: Metrics) -> Any:
    try:
        from ..memory import MemoryMonitor
    except ImportError:  # memory/ not built in this checkout: run without pressure levels
        log.warning("edgestore.memory is unavailable; running without the memory monitor")
        return None
    # With several workers this process is one of granian's children: the budget covers the
    # master and every sibling too, so the monitor measures the tree from the parent.
    return MemoryMonitor(
        settings,
        store,
        activity=metrics.activity,
        server_root=os.getppid() if settings.workers > 1 else None,
    )


def _counting_handlers(metrics: Metrics) -> Any:
    """The error mapper's handlers, counting the requests no route took (404, 405): those
    never reach the per-route middleware that counts every other request."""
    handlers = exception_handlers()
    mapper = handlers[Exception]

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        response = mapper(request, exc)
        if request.scope.get("route_handler") is None and response.status_code is not None:
            metrics.count_unrouted(request.method, response.status_code)
        return response

    return {**handlers, Exception: handle}


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
        memory = _start_memory_monitor(settings, opened, metrics)
        if memory is not None:
            await memory.start()
        state.memory = memory
        if settings.statement_stats:
            queries = QueryStats()
            queries.attach(opened)
            state.queries = queries
        history = History(state)
        state.history = history
        await history.start()
        try:
            yield
        finally:
            await history.stop()
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
        *dashboard_routes.route_handlers(),
        *_optional_routes(state),
    ]
    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        middleware=[edge_middleware(state)],
        exception_handlers=_counting_handlers(metrics),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            render_plugins=schema_plugins(),
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
