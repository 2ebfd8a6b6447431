"""``/schema``: the OpenAPI document shown by a small viewer shipped in the package.

Litestar's UI plugins load their viewers (ReDoc, Swagger UI, ...) from a CDN, so the page was
blank without internet access, which is where edge nodes often are. This page is one HTML
file with inline script (``static/schema.html``); the JSON and YAML documents stay at
``/schema/openapi.json`` and ``/schema/openapi.yaml``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin, YamlRenderPlugin

__all__ = ["OfflineSchemaPlugin", "schema_plugins"]


@cache
def _page() -> bytes:
    return files("edgestore.web").joinpath("static/schema.html").read_bytes()


class OfflineSchemaPlugin(OpenAPIRenderPlugin):
    """The viewer page; it fetches ``openapi.json`` next to it."""

    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return _page()


def schema_plugins() -> list[OpenAPIRenderPlugin]:
    """The render plugins of edgestore's OpenAPI config: the offline viewer and YAML."""
    return [OfflineSchemaPlugin(), YamlRenderPlugin(path="/openapi.yaml")]
