"""A replication position as it travels over HTTP: ``<generation>.<frame>``.

The primary sends it after a write (``x-edgestore-position``) and a client may send it back to a
replica node to read its own writes (``edgestore.replication.read_options``).
"""

from __future__ import annotations

from ..errors import InvalidRequest
from ..storage.roles import Position

__all__ = ["POSITION_HEADER", "Position", "format_position", "parse_position"]

POSITION_HEADER = "x-edgestore-position"
"""Response header carrying the replication position a write produced: ``<generation>.<frame>``."""


def format_position(position: Position) -> str:
    return f"{position[0]}.{position[1]}"


def parse_position(text: str) -> Position:
    """``"<generation>.<frame>"`` -> ``(generation, frame)``; InvalidRequest when malformed."""
    gen, sep, frame = text.strip().partition(".")
    try:
        if not sep:
            raise ValueError
        out = (int(gen), int(frame))
    except ValueError:
        raise InvalidRequest(
            f"invalid replication position {text!r}: expected '<generation>.<frame>'"
        ) from None
    if out[0] < 1 or out[1] < 0:
        raise InvalidRequest(f"invalid replication position {text!r}")
    return out
