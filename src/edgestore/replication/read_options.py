"""Per-request read options for a replica node, carried in context variables.

The web layer sets them from request headers (``x-edgestore-accept-stale: true`` and
``x-edgestore-position: <generation>.<frame>``, see ``edgestore.web.replica_headers``) with
:func:`set_read_options`; the replica store reads them. Context variables follow the request's
task, so nothing is threaded through the Store API.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from .position import Position, parse_position

__all__ = ["ACCEPT_STALE_HEADER", "read_options", "reset_read_options", "set_read_options"]

_OPTIONS: ContextVar[tuple[bool, Position | None]] = ContextVar(
    "edgestore_replica_read_options", default=(False, None)
)

ACCEPT_STALE_HEADER = "x-edgestore-accept-stale"


def set_read_options(
    accept_stale: str | bool | None, position: str | Position | None
) -> Token[tuple[bool, Position | None]]:
    """Set for the current context; header values are parsed (a bad position raises
    InvalidRequest). Returns a token for :func:`reset_read_options`."""
    stale = (
        accept_stale
        if isinstance(accept_stale, bool)
        else (accept_stale or "").strip().lower() in ("1", "true", "yes", "on")
    )
    pos = parse_position(position) if isinstance(position, str) else position
    return _OPTIONS.set((stale, pos))


def reset_read_options(token: Token[tuple[bool, Position | None]]) -> None:
    _OPTIONS.reset(token)


def read_options() -> tuple[bool, Position | None]:
    """``(accept_stale, wanted_position)`` of the current request."""
    return _OPTIONS.get()
