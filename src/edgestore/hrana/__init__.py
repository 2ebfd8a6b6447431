"""The libSQL wire protocol (Hrana) over HTTP and WebSocket, framework-free.

``edgestore.web.hrana_routes`` mounts it; this package never imports the web stack.

Concurrency against the 3-connection pool (one writer, up to two readers):

* a stream in autocommit mode holds no connection; its statements go through the Store like
  any JSON API call (writes are group-committed, reads use a reader);
* a write transaction (``BEGIN``, ``BEGIN DEFERRED``/``IMMEDIATE``/``EXCLUSIVE``) pins the
  writer until COMMIT/ROLLBACK, so **one** interactive write transaction runs at a time; a
  second one's BEGIN waits for the writer up to ``pool_timeout`` and is then refused with
  ``SQLITE_BUSY``;
* ``BEGIN TRANSACTION READONLY`` pins a reader: up to ``max_readers`` (2) read transactions
  run next to the write transaction; more wait for a reader the same way;
* a transaction is bounded by ``transaction_timeout`` (``TRANSACTION_TIMEOUT``) and an HTTP
  stream by ``stream_idle_timeout``: expiry rolls back and releases the connection.
"""

from __future__ import annotations

from .errors import error_of
from .http import HranaHttp
from .stream import Stream
from .ws import CLOSE_PROTOCOL_ERROR, SUBPROTOCOLS, WsConnection, choose_subprotocol

__all__ = [
    "CLOSE_PROTOCOL_ERROR",
    "SUBPROTOCOLS",
    "HranaHttp",
    "Stream",
    "WsConnection",
    "choose_subprotocol",
    "error_of",
]
