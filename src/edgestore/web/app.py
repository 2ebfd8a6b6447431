"""The standalone Litestar application: :class:`~edgestore.web.plugin.EdgestorePlugin` on an
otherwise empty app, with the OpenAPI document and edgestore's error mapper for every path
(unknown paths and methods answer in edgestore's JSON error shape too, and are counted).

``create_app()`` opens the Store from settings at startup (or uses the one given, which the
caller then owns and closes) and closes it at shutdown; ``edgestore serve`` runs it under
granian, embedded in its process or as a factory once per worker process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response
from litestar.openapi import OpenAPIConfig

from .._version import __version__
from ..config import Settings
from .errors import exception_handlers
from .metrics import Metrics
from .plugin import EdgestoreConfig, EdgestorePlugin
from .schema_page import schema_plugins
from .state import AppState

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["AppState", "create_app"]


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
    """The edgestore HTTP app. Without ``store`` it opens ``settings.db_path`` at startup.

    ``settings`` defaults to ``store.settings``, else ``Settings.load()`` (environment and
    config file); invalid settings raise :class:`~edgestore.errors.ConfigError`.
    """
    plugin = EdgestorePlugin(EdgestoreConfig(settings=settings, store=store))
    return Litestar(
        plugins=[plugin],
        exception_handlers=_counting_handlers(plugin.state.metrics),
        request_max_body_size=plugin.state.settings.max_body_bytes,
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
