"""The application key/value cache over HTTP: ``/api/v1/cache/{key}`` and its statistics."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import delete, get, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, PathParameter, QueryParameter

from ...auth import Role
from ...cache.stats import CacheStats
from ...cache.store_cache import StoreCache
from ...errors import InvalidRequest, NotFoundError
from ..encoding import encode_value
from ..errors import NO_CONTENT, NOT_FOUND, OK, responses
from ..state import ROLE_OPT, AppState

__all__ = ["CacheEntryOut", "route_handlers"]

CacheKey = Annotated[str, PathParameter(min_length=1, max_length=1024, description="The cache key")]


class CacheEntryOut(msgspec.Struct):
    key: str
    value: Any
    """The stored JSON value (bytes stored by the library appear as {"$blob": "<base64>"})."""


def route_handlers(state: AppState) -> list[HTTPRouteHandler]:
    ro = {ROLE_OPT: Role.RO}
    rw = {ROLE_OPT: Role.RW}

    @get("/api/v1/cache", opt=ro, tags=["cache"], summary="Cache statistics", responses=responses())
    async def cache_stats() -> CacheStats:
        return StoreCache.of(state.store).stats()

    @get(
        "/api/v1/cache/{key:str}",
        opt=ro,
        tags=["cache"],
        summary="Read a cached value",
        responses=responses(NOT_FOUND),
    )
    async def cache_get(key: CacheKey) -> CacheEntryOut:
        value = await state.store.cache.get(key)
        if value is None:
            raise NotFoundError(f"no cached value for key {key!r}")
        return CacheEntryOut(
            key=key, value=encode_value(value) if isinstance(value, bytes) else value
        )

    @put(
        "/api/v1/cache/{key:str}",
        opt=rw,
        status_code=OK,
        tags=["cache"],
        summary="Store a JSON value, optionally with a TTL",
        responses=responses(),
    )
    async def cache_put(
        key: CacheKey,
        data: JSONBody[Any],
        ttl: Annotated[
            float | None, QueryParameter(gt=0, description="Seconds until the value expires")
        ] = None,
    ) -> CacheEntryOut:
        try:
            await state.store.cache.set(key, data, ttl=ttl)
        except OverflowError:  # the cache's binary encoding holds 64-bit integers at most
            raise InvalidRequest("integers in cached values must fit in 64 bits") from None
        return CacheEntryOut(key=key, value=data)

    @delete(
        "/api/v1/cache/{key:str}",
        opt=rw,
        status_code=NO_CONTENT,
        tags=["cache"],
        summary="Delete a cached value",
        responses=responses(),
    )
    async def cache_delete(key: CacheKey) -> None:
        await state.store.cache.delete(key)

    return [cache_stats, cache_get, cache_put, cache_delete]
