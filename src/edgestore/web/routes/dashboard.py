"""``GET /dashboard``: one self-contained HTML page of live charts (no CDN, no build step)."""

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

    return [dashboard]
