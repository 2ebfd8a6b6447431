"""A request's replica read options, read from its raw (ASGI) headers.

``x-edgestore-accept-stale: true`` lets a replica node answer from a replica further behind
than ``max_replication_lag``; ``x-edgestore-position: <generation>.<frame>`` makes it wait
(bounded) until it has that position. :mod:`edgestore.replication.read_options` keeps them for
the request's context.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import Token

from ..errors import InvalidRequest
from ..replication import POSITION_HEADER, Position
from ..replication.read_options import ACCEPT_STALE_HEADER, set_read_options

__all__ = ["set_from_headers"]

_STALE_KEY = ACCEPT_STALE_HEADER.encode("latin-1")
_POSITION_KEY = POSITION_HEADER.encode("latin-1")


def set_from_headers(
    headers: Iterable[tuple[bytes, bytes]],
) -> Token[tuple[bool, Position | None]] | None:
    """Set the read options from raw (ASGI) request headers; None when neither header is there
    (nothing set, nothing to reset). A malformed position is ignored, not an error."""
    stale: str | None = None
    position: str | None = None
    for key, value in headers:
        if key == _STALE_KEY:
            stale = value.decode("latin-1")
        elif key == _POSITION_KEY:
            position = value.decode("latin-1")
    if stale is None and position is None:
        return None
    try:
        return set_read_options(stale, position)
    except InvalidRequest:
        return set_read_options(stale, None)
