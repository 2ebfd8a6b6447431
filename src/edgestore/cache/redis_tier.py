"""Optional Redis tier (extra ``redis``): shared results and invalidation for several nodes.

The local CompressedLRU stays first; Redis is asked only on a local miss. Correctness across
nodes rests on *global* table versions kept in one Redis hash:

- after each commit through a store (and each ``store.invalidate(table)``), the tables'
  counters are incremented (HINCRBY) and an invalidation message naming them is published;
  every other node bumps its local versions for those tables, so its local entries for them
  are stale at once;
- a node that detects a write it did not make itself (SQLite ``data_version``) increments a
  global epoch, since it cannot tell which tables changed;
- a result stored in Redis is tagged with the global counters (epoch + its tables) read
  *before* the query ran; a lookup compares them with the current ones in the same round
  trip. A write on another node either happened before the counters were read (the read saw
  it) or moves them after (the entry is stale).

The namespace is derived from the database file's absolute path unless given; nodes on the
same file share it. Redis calls are blocking (redis-py) and run on a small thread pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import CacheError, MissingExtraError
from .stats import RedisTierStats

if TYPE_CHECKING:
    from ..storage.store import Store
    from .query import QueryCache

__all__ = ["EPOCH_FIELD", "RedisTier"]

log = logging.getLogger(__name__)

EPOCH_FIELD = "*epoch*"
_encode = msgspec.msgpack.encode
_decode = msgspec.msgpack.decode


class RedisTier:
    """Second cache tier and invalidation bus over one Redis server."""

    def __init__(
        self,
        store: Store,
        query: QueryCache,
        url: str,
        *,
        namespace: str | None = None,
        ttl: float = 300.0,
    ) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the extra is installed in tests
            raise MissingExtraError("the Redis cache tier (redis_url)", "redis") from exc
        self.store = store
        self.query = query
        self.url = url
        self.ttl = ttl
        self.client = redis.Redis.from_url(url)
        ns = (
            namespace
            or "edgestore:" + hashlib.sha1(str(store.path.resolve()).encode()).hexdigest()[:16]
        )
        self.namespace = ns
        self.channel = f"{ns}:invalidate"
        self.versions_key = f"{ns}:versions"
        self.prefix = f"{ns}:q:".encode()
        self.node = uuid.uuid4().hex
        self.published = 0
        self.received = 0
        self.hits = 0
        self.misses = 0
        self.stores = 0
        self.errors = 0
        # One thread: calls run in submission order, so an epoch bump made when an external
        # write is detected always lands before the lookup that follows it.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="edgestore-redis")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pubsub: Any = None
        self._listener: Any = None
        self._undo: list[Any] = []
        self._applying = False

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self._subscribe)
        except Exception as exc:
            self._pool.shutdown(wait=False)
            raise CacheError(f"cannot use Redis at {self.url}: {exc}") from exc
        self._undo.append(self.store.versions.subscribe(self._on_versions))
        self.query.tier = self

    async def close(self) -> None:
        for undo in self._undo:
            undo()
        self._undo.clear()
        if self.query.tier is self:
            self.query.tier = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._unsubscribe)
        self._pool.shutdown(wait=True)

    def _subscribe(self) -> None:
        self.client.ping()
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._pubsub.subscribe(**{self.channel: self._on_message})
        self._listener = self._pubsub.run_in_thread(sleep_time=0.05, daemon=True)
        # Wait until the server knows about the subscription: a publish right after start()
        # returns must reach this node.
        for _ in range(200):
            subs = dict(self.client.pubsub_numsub(self.channel))
            if any(n for n in subs.values()):
                return
            self._listener.join(0.01)

    def _unsubscribe(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener.join(5)
        if self._pubsub is not None:
            self._pubsub.close()
        self.client.close()

    # --- invalidation bus -------------------------------------------------------------

    def _on_versions(self, tables: frozenset[str] | None) -> None:
        """Event loop, after our versions moved: tell the others (off the loop)."""
        if self._applying:
            return  # a message from another node: it already told everybody
        if tables is None:
            # Everything changed under us (another process wrote, schema change): entries
            # in Redis tagged before must not be trusted either. Nodes on the same file
            # notice the change themselves (data_version), so no message.
            self._submit(self.client.hincrby, self.versions_key, EPOCH_FIELD, 1)
        elif tables:
            self._submit(self._publish, sorted(tables))

    def _publish(self, tables: list[str]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for t in tables:
            pipe.hincrby(self.versions_key, t, 1)
        pipe.publish(self.channel, _encode({"n": self.node, "t": tables}))
        pipe.execute()
        self.published += 1

    def _on_message(self, message: dict[str, Any]) -> None:
        """Listener thread: a node published the tables it wrote."""
        try:
            msg = _decode(message["data"])
        except (msgspec.DecodeError, KeyError, TypeError):
            return
        if msg.get("n") == self.node or self._loop is None:
            return
        tables = msg.get("t")
        self._loop.call_soon_threadsafe(self._apply, tables)

    def _apply(self, tables: list[str] | None) -> None:
        self.received += 1
        self._applying = True
        try:
            if tables:
                self.store.versions.bump(tables)
            else:
                self.store.versions.bump_all()
        finally:
            self._applying = False

    # --- shared results ---------------------------------------------------------------

    async def lookup(self, key: bytes, reads: frozenset[str]) -> tuple[bytes, bytes | None]:
        """``(global stamp, stored entry or None)`` in one round trip."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._lookup, key, sorted(reads))

    def _lookup(self, key: bytes, tables: list[str]) -> tuple[bytes, bytes | None]:
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.versions_key, [EPOCH_FIELD, *tables])
        pipe.get(self.prefix + key)
        versions, blob = pipe.execute()
        stamp = _encode([int(v or 0) for v in versions])
        if blob is None:
            self.misses += 1
        return stamp, blob

    def store_entry(self, key: bytes, entry: bytes) -> None:
        """Keep ``entry`` (already tagged with the global stamp) for other nodes."""
        self._submit(self._set, self.prefix + key, entry)

    def _set(self, name: bytes, entry: bytes) -> None:
        self.client.set(name, entry, px=int(self.ttl * 1000))
        self.stores += 1

    def _submit(self, fn: Any, *args: Any) -> None:
        try:
            fut = self._pool.submit(fn, *args)
        except RuntimeError:  # shut down
            return
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[Any]) -> None:
        exc = fut.exception()
        if exc is not None:
            self.errors += 1
            log.warning("redis tier: %s", exc)

    def stats(self) -> RedisTierStats:
        return RedisTierStats(
            namespace=self.namespace,
            published=self.published,
            received=self.received,
            hits=self.hits,
            misses=self.misses,
            stores=self.stores,
            errors=self.errors,
        )
