"""Hrana messages as msgspec structs: what a client sends and reads back over ``v3/pipeline``.

The server reads requests leniently (``edgestore.hrana.stream``, any JSON object) and writes
responses with the same value and error codec this module uses (:mod:`.values`,
:mod:`.errors`); the replica node's forwarding client (``edgestore.replication.forward``)
encodes its statements and decodes the primary's answers here, typed, so a malformed answer
fails loudly instead of reading as an empty result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ..errors import EdgestoreError, ProtocolError
from ..storage.results import Column, Description, Params, Result
from .errors import exception_of
from .values import decode_value, encode_arg

__all__ = [
    "AutocommitResponse",
    "BatchResponse",
    "BatchResult",
    "Col",
    "DescribeResponse",
    "DescribeResult",
    "ExecuteResponse",
    "PipelineResponse",
    "StmtResult",
    "StreamResult",
    "decode_pipeline",
    "description_of",
    "encode_stmt",
    "failure_of",
    "result_of",
]


class Col(msgspec.Struct, frozen=True):
    name: str | None = None
    decltype: str | None = None


class StmtResult(msgspec.Struct, frozen=True):
    cols: list[Col] = []
    rows: list[list[dict[str, Any]]] = []
    affected_row_count: int = 0
    last_insert_rowid: str | None = None


class BatchResult(msgspec.Struct, frozen=True):
    step_results: list[StmtResult | None] = []
    step_errors: list[dict[str, Any] | None] = []


class DescribeParam(msgspec.Struct, frozen=True):
    name: str | None = None


class DescribeResult(msgspec.Struct, frozen=True):
    params: list[DescribeParam] = []
    cols: list[Col] = []
    is_explain: bool = False
    is_readonly: bool = False


class ExecuteResponse(msgspec.Struct, frozen=True, tag="execute", tag_field="type"):
    result: StmtResult


class BatchResponse(msgspec.Struct, frozen=True, tag="batch", tag_field="type"):
    result: BatchResult


class DescribeResponse(msgspec.Struct, frozen=True, tag="describe", tag_field="type"):
    result: DescribeResult


class AutocommitResponse(msgspec.Struct, frozen=True, tag="get_autocommit", tag_field="type"):
    is_autocommit: bool


class CloseResponse(msgspec.Struct, frozen=True, tag="close", tag_field="type"):
    pass


class SequenceResponse(msgspec.Struct, frozen=True, tag="sequence", tag_field="type"):
    pass


class StoreSqlResponse(msgspec.Struct, frozen=True, tag="store_sql", tag_field="type"):
    pass


class CloseSqlResponse(msgspec.Struct, frozen=True, tag="close_sql", tag_field="type"):
    pass


Response = (
    ExecuteResponse
    | BatchResponse
    | DescribeResponse
    | AutocommitResponse
    | CloseResponse
    | SequenceResponse
    | StoreSqlResponse
    | CloseSqlResponse
)


class StreamResult(msgspec.Struct, frozen=True):
    """One pipeline result: ``ok`` with a response, or ``error`` with a Hrana Error."""

    type: str
    response: Response | None = None
    error: dict[str, Any] | None = None


class PipelineResponse(msgspec.Struct, frozen=True):
    baton: str | None = None
    base_url: str | None = None
    results: list[StreamResult] = []


_pipeline_decoder = msgspec.json.Decoder(PipelineResponse)


def decode_pipeline(body: bytes) -> PipelineResponse:
    """A ``v2``/``v3`` pipeline response body; ProtocolError when it is not one."""
    try:
        return _pipeline_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"malformed pipeline response: {exc}") from None


def failure_of(item: StreamResult) -> EdgestoreError | None:
    """The error of a pipeline result, or None when it succeeded."""
    if item.type == "ok" and item.response is not None:
        return None
    return exception_of(item.error or {"message": f"pipeline result of type {item.type!r}"})


def encode_stmt(sql: str, params: Params) -> dict[str, Any]:
    """A Hrana Stmt (arguments encoded with :func:`~.values.encode_arg`)."""
    out: dict[str, Any] = {"sql": sql, "want_rows": True}
    if isinstance(params, Mapping):
        out["named_args"] = [
            {"name": k if k[:1] in (":", "@", "$") else f":{k}", "value": encode_arg(v)}
            for k, v in params.items()
        ]
    elif params is not None:
        out["args"] = [encode_arg(v) for v in params]
    return out


def _columns(cols: Sequence[Col]) -> tuple[Column, ...]:
    return tuple(Column(c.name or "", c.decltype) for c in cols)


def result_of(raw: StmtResult) -> Result:
    """A StmtResult as a storage Result (values decoded strictly: an unknown type raises)."""
    rowid = raw.last_insert_rowid
    return Result(
        _columns(raw.cols),
        [tuple(decode_value(v) for v in row) for row in raw.rows],
        rows_affected=raw.affected_row_count,
        last_insert_rowid=int(rowid) if rowid is not None else None,
    )


def description_of(raw: DescribeResult) -> Description:
    """A DescribeResult as a storage Description."""
    return Description(
        columns=_columns(raw.cols),
        params=tuple(p.name for p in raw.params),
        is_readonly=raw.is_readonly,
        is_explain=raw.is_explain,
    )
