"""edgestore as a Litestar plugin: ``Litestar(plugins=[EdgestorePlugin(EdgestoreConfig(...))])``.

The plugin adds to the host app, and changes nothing else in it:

* one :class:`~litestar.Router` under ``EdgestoreConfig.path`` holding every edgestore route
  (JSON API, tables, cache, ops, dashboard, libSQL/Hrana over HTTP and WebSocket, sync). Its
  middleware (pressure refusal, auth, metrics, hot cache, replication headers) and its error
  mapper (``web/errors.py``) are set on that router, so they apply to edgestore's routes only;
* the store's lifespan: opened from the settings at startup (or the store given, which the
  caller owns and closes), the memory monitor started, and at shutdown both closed: the store's
  close finishes queued writes and checkpoints the WAL, so a stopped app leaves a complete
  ``.db`` file;
* dependency providers, so a handler of the host app can take ``store: Store`` and
  ``cache: KVCache`` (names configurable);
* the error mapper for :class:`~edgestore.errors.EdgestoreError` app-wide, so such errors
  raised in the host's own handlers get edgestore's status and JSON shape too.

``create_app()`` (``web/app.py``) is this plugin on an otherwise empty app.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from litestar.types import ControllerRouterHandler

from ..auth import Authenticator
from ..cache import KVCache
from ..config import Settings, serves_publicly_without_auth
from ..errors import EdgestoreError
from ..storage import Store
from ..storage.read_cache import KeyValueCache
from ..tables import Catalog
from .errors import exception_handlers
from .history import History
from .hrana_routes import close_streams
from .hrana_routes import route_handlers as hrana_route_handlers
from .metrics import Metrics
from .middleware import edge_middleware
from .query_stats import QueryStats
from .routes import backup as backup_routes
from .routes import cache as cache_routes
from .routes import dashboard as dashboard_routes
from .routes import ops as ops_routes
from .routes import sql as sql_routes
from .routes import tables as table_routes
from .state import AppState
from .sync_routes import route_handlers as sync_route_handlers

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

    from ..memory import MemoryMonitor

__all__ = ["STATE_KEY", "EdgestoreConfig", "EdgestorePlugin"]

log = logging.getLogger("edgestore.web")

STATE_KEY = "edgestore"
"""Key of the :class:`AppState` in the host app's ``app.state``."""


@dataclass(slots=True, kw_only=True)
class EdgestoreConfig:
    """How edgestore joins a Litestar app."""

    settings: Settings | None = None
    """``None``: the settings of ``store`` when given, else ``Settings.load()`` (env, file)."""
    store: Store | None = None
    """An open store to serve; the caller owns it and closes it after the app stops.
    ``None``: the plugin opens ``settings.db_path`` at startup and closes it at shutdown."""
    path: str = "/"
    """Path prefix of every edgestore route (``"/db"``: ``/db/api/v1/query``, Hrana's
    WebSocket on ``/db``, the dashboard on ``/db/dashboard``)."""
    store_dependency_key: str = "store"
    """Name under which handlers of the host app receive the :class:`Store`."""
    cache_dependency_key: str = "cache"
    """Name under which handlers of the host app receive the store's :class:`KVCache`."""
    resolved_settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        if self.settings is None:
            self.settings = self.store.settings if self.store is not None else Settings.load()
        self.resolved_settings = self.settings
        self.path = "/" + self.path.strip("/")


class EdgestorePlugin(InitPluginProtocol):
    """Mounts edgestore (routes, lifespan, dependencies, error mapper) on a Litestar app."""

    __slots__ = ("config", "state")

    def __init__(self, config: EdgestoreConfig | None = None) -> None:
        self.config = config if config is not None else EdgestoreConfig()
        settings = self.config.resolved_settings
        metrics = Metrics()
        metrics.access_log = settings.access_log
        self.state = AppState(
            settings=settings, authenticator=Authenticator(settings), metrics=metrics
        )
        """What edgestore's handlers share; ``state.store`` is the open store after startup."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        state = self.state
        settings = state.settings
        if serves_publicly_without_auth(settings):
            log.warning(
                "edgestore: host %s with NO AUTHENTICATION (allow_public_without_auth): anyone "
                "who can reach it can read, write and delete all data",
                settings.host,
            )
        schema = Catalog()
        app_config.route_handlers.append(
            Router(
                path=self.config.path,
                route_handlers=_route_handlers(state, schema),
                middleware=[edge_middleware(state)],
                exception_handlers=exception_handlers(),
                request_max_body_size=settings.max_body_bytes,
            )
        )
        app_config.lifespan.append(_lifespan(state, schema, self.config.store))
        app_config.dependencies.update(
            {
                self.config.store_dependency_key: Provide(_store_of(state), sync_to_thread=False),
                self.config.cache_dependency_key: Provide(_cache_of(state), sync_to_thread=False),
            }
        )
        app_config.signature_namespace.update({"Store": Store, "KVCache": KVCache})
        # Only edgestore's own errors: the host's other exceptions keep the host's handlers.
        app_config.exception_handlers.setdefault(EdgestoreError, exception_handlers()[Exception])
        app_config.state[STATE_KEY] = state
        return app_config


def _route_handlers(state: AppState, schema: Catalog) -> list[ControllerRouterHandler]:
    return [
        *sql_routes.route_handlers(state),
        *table_routes.route_handlers(state, schema),
        *cache_routes.route_handlers(state),
        *ops_routes.route_handlers(state),
        *backup_routes.route_handlers(state),
        *dashboard_routes.route_handlers(),
        *hrana_route_handlers(state),
        *sync_route_handlers(state),
    ]


def _store_of(state: AppState) -> Any:
    def provide_store() -> Store:
        return state.store  # StoreClosedError (503) outside the lifespan

    return provide_store


def _cache_of(state: AppState) -> Any:
    def provide_cache() -> KeyValueCache:
        # A KVCache for every store edgestore.open() composes (storage.open alone has none).
        return state.store.cache

    return provide_cache


def _start_memory_monitor(state: AppState, store: Store) -> MemoryMonitor:
    from ..memory import MemoryMonitor

    settings = state.settings
    # With several workers this process is one of granian's children: the budget covers the
    # master and every sibling too, so the monitor measures the tree from the parent.
    return MemoryMonitor(
        settings,
        store,
        activity=state.metrics.activity,
        stream_bytes=state.buffers.total,
        server_root=os.getppid() if settings.workers > 1 else None,
    )


def _lifespan(state: AppState, schema: Catalog, given: Store | None) -> Any:
    settings = state.settings

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from ..opening import open_with_settings
        from ..storage.factory import resolve_settings

        owned = given is None
        # A served node opens with its replication role (plain, primary or replica).
        opened = (
            given
            if given is not None
            else await open_with_settings(resolve_settings(None, settings, {}), serve_replicas=True)
        )
        state.store_or_none = opened
        schema.attach(opened)
        memory = _start_memory_monitor(state, opened)
        await memory.start()
        state.memory = memory
        if settings.statement_stats:
            queries = QueryStats()
            queries.attach(opened)
            state.queries = queries
        history = History(state)
        state.history = history
        await history.start()
        # SIGTERM ends cursors and WebSockets at once, so the shutdown below is not kept
        # waiting by a client that stopped reading (see web/drain.py).
        restore_signals = state.drain.install_signal_handlers()
        try:
            yield
        finally:
            restore_signals()
            await state.drain.end_all()
            await history.stop()
            # Roll back abandoned Hrana streams first: one inside a transaction pins the
            # writer, and closing the store would wait for it.
            await close_streams(state)
            await memory.stop()
            schema.detach()
            if owned:
                # Finishes queued group commits, then checkpoints (TRUNCATE) and closes.
                await opened.close()
            state.store_or_none = None

    return lifespan
