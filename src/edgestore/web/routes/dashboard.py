"""``GET /dashboard``: live charts of the server's last hour (no CDN: uPlot is vendored)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from litestar import MediaType, get
from litestar.handlers import HTTPRouteHandler

from ..state import ESSENTIAL_OPT

__all__ = ["route_handlers"]


@cache
def _page() -> str:
    return files("edgestore.web").joinpath("static/dashboard.html").read_text(encoding="utf-8")


@cache
def _asset(name: str) -> bytes:
    return files("edgestore.web").joinpath("static/" + name).read_bytes()


def route_handlers() -> list[HTTPRouteHandler]:
    # The page itself holds no data (it fetches /api/v1/stats with the token given as
    # #token=... in its URL), so it is public and keeps answering under pressure.
    @get(
        "/dashboard",
        media_type=MediaType.HTML,
        opt={ESSENTIAL_OPT: True},
        tags=["ops"],
        summary="Live dashboard (HTML)",
        include_in_schema=True,
    )
    async def dashboard() -> str:
        return _page()

    # The chart library, vendored (static/vendor/uplot, MIT): the page needs no network.
    @get(
        "/dashboard/uplot.js",
        media_type="text/javascript",
        opt={ESSENTIAL_OPT: True},
        include_in_schema=False,
    )
    async def uplot_js() -> bytes:
        return _asset("vendor/uplot/uPlot.iife.min.js")

    @get(
        "/dashboard/uplot.css",
        media_type="text/css",
        opt={ESSENTIAL_OPT: True},
        include_in_schema=False,
    )
    async def uplot_css() -> bytes:
        return _asset("vendor/uplot/uPlot.min.css")

    return [dashboard, uplot_js, uplot_css]
