"""The standalone Litestar application: :class:`~edgestore.web.plugin.EdgestorePlugin` on an
otherwise empty app, with the OpenAPI document and edgestore's error mapper for every path
(unknown paths and methods answer in edgestore's JSON error shape too).

``create_app()`` opens the Store from settings at startup (or uses the one given, which the
caller then owns and closes) and closes it at shutdown; ``edgestore serve`` runs it under
granian as a factory, once per worker process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from .._version import __version__
from ..config import Settings
from .errors import exception_handlers
from .plugin import EdgestoreConfig, EdgestorePlugin
from .state import AppState

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["AppState", "create_app"]


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Litestar:
    """The edgestore HTTP app. Without ``store`` it opens ``settings.db_path`` at startup.

    ``settings`` defaults to ``store.settings``, else ``Settings.load()`` (environment and
    config file); invalid settings raise :class:`~edgestore.errors.ConfigError`.
    """
    plugin = EdgestorePlugin(EdgestoreConfig(settings=settings, store=store))
    return Litestar(
        plugins=[plugin],
        exception_handlers=exception_handlers(),
        request_max_body_size=plugin.state.settings.max_body_bytes,
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
