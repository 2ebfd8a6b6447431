"""The JSON encoding of SQLite values, lossless both ways.

JSON numbers are exact in JavaScript only up to 2**53 - 1, and JSON has no bytes, so:

=======================  =========================================================
SQLite value             JSON
=======================  =========================================================
NULL                     ``null``
INTEGER, |n| <= 2**53-1  a number: ``42``
INTEGER beyond that      ``{"$int": "9007199254740993"}`` (decimal string)
REAL (finite)            a number: ``1.5``
REAL +-inf               ``{"$float": "Infinity"}`` / ``{"$float": "-Infinity"}``
TEXT                     a string
BLOB                     ``{"$blob": "<standard base64>"}``
=======================  =========================================================

Parameters accept the same forms, plus plain JSON integers of any size (decoded exactly) and
``true``/``false`` (bound as 1/0, as SQLite has no boolean).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import InvalidRequest

__all__ = [
    "MAX_SAFE_INT",
    "decode_params",
    "decode_value",
    "encode_row",
    "encode_rows",
    "encode_value",
]

MAX_SAFE_INT = 2**53 - 1

Value = None | int | float | str | bytes


def encode_value(v: Any) -> Any:
    """One SQLite value to its JSON form."""
    t = type(v)
    if t is int:
        if -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
            return v
        return {"$int": str(v)}
    if t is str or v is None:
        return v
    if t is float:
        if math.isfinite(v):
            return v
        return {"$float": "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")}
    if t is bytes or t is bytearray or t is memoryview:
        return {"$blob": base64.b64encode(bytes(v)).decode("ascii")}
    if t is bool:
        return int(v)
    return v


def _plain(v: Any) -> bool:
    t = type(v)
    return (
        t is str
        or v is None
        or (t is int and -MAX_SAFE_INT <= v <= MAX_SAFE_INT)
        or (t is float and math.isfinite(v))
    )


def encode_row(row: Sequence[Any]) -> list[Any]:
    """A row as a JSON array."""
    return [v if _plain(v) else encode_value(v) for v in row]


def encode_rows(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows as JSON arrays."""
    return [encode_row(r) for r in rows]


def decode_value(v: Any, where: str = "parameter") -> Value:
    """One JSON value (as decoded by msgspec) to a SQLite value."""
    if v is None or isinstance(v, str | int | float):
        if isinstance(v, bool):
            return int(v)
        return v
    if isinstance(v, Mapping) and len(v) == 1:
        ((tag, payload),) = v.items()
        if isinstance(payload, str):
            if tag == "$int":
                try:
                    return int(payload)
                except ValueError:
                    raise InvalidRequest(f"{where}: $int must be a decimal integer") from None
            if tag == "$blob":
                try:
                    return base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidRequest(f"{where}: $blob must be standard base64") from None
            if tag == "$float":
                if payload in ("Infinity", "-Infinity", "NaN"):
                    return float(payload.replace("Infinity", "inf").replace("NaN", "nan"))
                raise InvalidRequest(f"{where}: $float must be Infinity, -Infinity or NaN")
    raise InvalidRequest(
        f"{where}: unsupported value {v!r}; use null, a number, a string, "
        '{"$int": "..."}, {"$blob": "<base64>"} or {"$float": "Infinity"}'
    )


def decode_params(params: Any) -> list[Value] | dict[str, Value] | None:
    """Request parameters: a JSON array (positional) or object (named, with or without the
    ``:``/``@``/``$`` prefix) to what the Store accepts."""
    if params is None:
        return None
    if isinstance(params, list):
        return [decode_value(p, f"params[{i}]") for i, p in enumerate(params)]
    if isinstance(params, dict):
        out: dict[str, Value] = {}
        for name, p in params.items():
            key = name[1:] if name[:1] in (":", "@", "$") else name
            if not key:
                raise InvalidRequest("params: empty parameter name")
            out[key] = decode_value(p, f"params[{name!r}]")
        return out
    raise InvalidRequest("params must be a JSON array (positional) or object (named)")
