"""JSON decoding shared by the Hrana transports: one object per HTTP body or WebSocket frame."""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ProtocolError

__all__ = ["decode_object"]

_decoder = msgspec.json.Decoder()


def decode_object(data: str | bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``data``; ProtocolError naming ``what`` when it is not one."""
    try:
        obj = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec stops at 1000 levels of nesting
        raise ProtocolError(f"{what} is nested too deeply (at most 1000 levels)") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} must be a JSON object")
    return obj
