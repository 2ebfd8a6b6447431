"""The HTTP service: a thin Litestar shell over the library.

``create_app()`` builds the standalone app; :class:`EdgestorePlugin` mounts edgestore inside
your own Litestar app (see the README, "Use edgestore inside your Litestar app").
"""

from .app import create_app
from .plugin import EdgestoreConfig, EdgestorePlugin

__all__ = ["EdgestoreConfig", "EdgestorePlugin", "create_app"]
