"""The one Hrana codec, both directions: what the replica's forwarding client encodes, the
server decodes to the same value; what the server answers, the client decodes; errors map to
Hrana Error objects and back to the same edgestore classes.

Values travel as real JSON bytes (msgspec, as both sides send them), not as Python dicts.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from edgestore import errors as e
from edgestore.hrana.errors import error_of, exception_of
from edgestore.hrana.values import decode_args, decode_value, encode_arg, encode_value
from edgestore.hrana.wire import ExecuteResponse, decode_pipeline, encode_stmt, result_of

_BIG = sys.float_info.max


def _through_json(obj: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(obj))


@pytest.mark.parametrize(
    "value",
    [
        None,
        0,
        -1,
        2**53 + 1,
        2**63 - 1,
        -(2**63),
        1.5,
        -0.0,
        5e-324,
        _BIG,
        math.inf,
        -math.inf,
        "",
        "text \u00e9 \U0001f600",
        b"",
        b"\x00\xff\x10blob",
    ],
    ids=repr,
)
def test_arguments_round_trip_exactly(value: Any) -> None:
    got = decode_value(_through_json(encode_arg(value)))
    assert type(got) is type(value)
    assert got == value
    if isinstance(value, float):
        assert math.copysign(1, got) == math.copysign(1, value)


def test_nan_is_sent_as_null_as_sqlite_stores_it() -> None:
    assert decode_value(_through_json(encode_arg(math.nan))) is None
    assert decode_value(_through_json(encode_value(math.nan))) is None


def test_results_keep_infinity_parseable_by_every_client() -> None:
    # libSQL clients parse only finite JSON numbers: a result's infinity is the largest double.
    for sign in (1, -1):
        wire = msgspec.json.encode(encode_value(sign * math.inf))
        assert b"Infinity" not in wire
        assert b"null" not in wire
        assert decode_value(msgspec.json.decode(wire)) == sign * _BIG


def test_blob_like_arguments_become_blobs() -> None:
    for value in (bytearray(b"ab"), memoryview(b"ab")):
        assert decode_value(_through_json(encode_arg(value))) == b"ab"


@pytest.mark.parametrize("value", [object(), Decimal("1.5"), [1], {"a": 1}, 2**63, -(2**63) - 1])
def test_values_sqlite_cannot_bind_are_refused_before_sending(value: Any) -> None:
    with pytest.raises(e.ParameterError) as info:
        encode_arg(value)
    assert info.value.code == "SQLITE_MISMATCH"


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "weird", "value": 1},
        {"type": "integer", "value": "12x"},
        {"type": "integer", "value": str(2**64)},
        {"type": "blob", "base64": "!!"},
        {"type": "text"},
        "not an object",
    ],
    ids=repr,
)
def test_unknown_or_malformed_values_are_refused_loudly(raw: Any) -> None:
    with pytest.raises(e.ProtocolError) as info:
        decode_value(raw)
    assert info.value.code == "ARGS_INVALID"


def test_statements_round_trip_positional_and_named() -> None:
    stmt = _through_json(encode_stmt("SELECT ?, ?", [math.inf, b"x"]))
    assert decode_args(stmt) == [math.inf, b"x"]
    named = _through_json(encode_stmt("SELECT :a, @b", {"a": 2**62 + 3, "@b": None}))
    assert decode_args(named) == {"a": 2**62 + 3, "b": None}


def test_client_decodes_what_the_server_encodes() -> None:
    row = [None, 2**63 - 1, 1.25, "t", b"\x00b"]
    body = msgspec.json.encode(
        {
            "baton": None,
            "base_url": None,
            "results": [
                {
                    "type": "ok",
                    "response": {
                        "type": "execute",
                        "result": {
                            "cols": [{"name": c, "decltype": None} for c in "abcde"],
                            "rows": [[encode_value(v) for v in row]],
                            "affected_row_count": 0,
                            "last_insert_rowid": str(2**62),
                        },
                    },
                }
            ],
        }
    )
    item = decode_pipeline(body).results[0]
    assert isinstance(item.response, ExecuteResponse)
    result = result_of(item.response.result)
    assert result.values == [tuple(row)]
    assert result.last_insert_rowid == 2**62
    assert [c.name for c in result.columns] == list("abcde")


def test_client_refuses_a_result_with_an_unknown_value_type() -> None:
    body = msgspec.json.encode(
        {
            "results": [
                {
                    "type": "ok",
                    "response": {
                        "type": "execute",
                        "result": {"cols": [{"name": "a"}], "rows": [[{"type": "decimal"}]]},
                    },
                }
            ]
        }
    )
    item = decode_pipeline(body).results[0]
    assert isinstance(item.response, ExecuteResponse)
    with pytest.raises(e.ProtocolError):
        result_of(item.response.result)


def test_malformed_pipeline_answers_are_refused() -> None:
    for body in (b"[]", b"{", b'{"results": [{"type": "ok", "response": {"type": "nope"}}]}'):
        with pytest.raises(e.ProtocolError):
            decode_pipeline(body)


@pytest.mark.parametrize(
    "exc",
    [
        e.ConstraintViolation(
            "UNIQUE failed", code="SQLITE_CONSTRAINT_UNIQUE", base_code="SQLITE_CONSTRAINT"
        ),
        e.DatabaseError("disk I/O", code="SQLITE_IOERR_WRITE", base_code="SQLITE_IOERR"),
        e.DatabaseBusyError("locked", code="SQLITE_BUSY", base_code="SQLITE_BUSY"),
        e.ReadOnlyError("ro", code="SQLITE_READONLY", base_code="SQLITE_READONLY"),
        e.ParameterError("missing :id", code="SQLITE_RANGE"),
        e.ParameterError("bad type", code="SQLITE_MISMATCH"),
        e.TransactionTimeout("too long"),
        e.PermissionDenied("no"),
        e.AuthError("who"),
        e.OverloadedError("busy"),
        e.StoreClosedError("closed"),
        e.InvalidRequest("bad"),
        e.NotFoundError("none"),
        e.ProtocolError("bad baton", code="STREAM_EXPIRED"),
    ],
    ids=lambda exc: type(exc).__name__ + ":" + str(getattr(exc, "code", "")),
)
def test_errors_round_trip_to_the_same_class(exc: e.EdgestoreError) -> None:
    back = exception_of(_through_json(error_of(exc)))
    assert type(back) is type(exc)
    assert back.detail == exc.detail
    for attr in ("code", "base_code"):
        if hasattr(exc, attr):
            assert getattr(back, attr) == getattr(exc, attr)


def test_protocol_codes_of_the_libsql_server_map_to_edgestore_errors() -> None:
    assert type(exception_of({"message": "x", "code": "SQL_PARSE_ERROR"})) is e.SQLSyntaxError
    assert isinstance(exception_of({"message": "x", "code": "BLOCKED"}), e.OverloadedError)
    # A pool timeout is answered as SQLITE_BUSY: the same meaning for the client.
    assert isinstance(exception_of(error_of(e.PoolTimeout("pinned"))), e.DatabaseBusyError)
    # A malformed error object still reads as an error.
    assert isinstance(exception_of({}), e.DatabaseError)


class _Int(int):
    pass


class _Text(str):
    pass


def test_a_row_encodes_as_its_values_do() -> None:
    """encode_row does the common types inline: every value still encodes exactly as
    encode_value encodes it, down to the bytes sent."""
    from edgestore.hrana.values import encode_row

    row = [
        None,
        0,
        -(2**63),
        True,
        _Int(7),
        1.5,
        -0.0,
        math.inf,
        -math.inf,
        math.nan,
        "é",
        b"\x00\x01",
        bytearray(b"ab"),
        memoryview(b"cd"),
    ]
    assert msgspec.json.encode(encode_row(row)) == msgspec.json.encode(
        [encode_value(v) for v in row]
    )
    # A str subclass (msgspec cannot encode one) takes encode_value's path as well.
    assert encode_row([_Text("t")]) == [encode_value(_Text("t"))]
    with pytest.raises(e.ProtocolError):
        encode_row([Decimal(1)])  # type: ignore[list-item]
