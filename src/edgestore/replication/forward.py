"""Writes of a replica node, sent to the primary over Hrana (HTTP, ``v3/pipeline``).

Why not ``libsql``'s own forwarding: libsql 0.1.11 sends Python integers beyond 32 bits as
floats, which would silently change data. This client encodes values exactly with the server's
own codec (``edgestore.hrana.values`` / ``edgestore.hrana.wire``), keeps a stream (baton) open
across an explicit transaction, and reads the replication position the primary returns
(``x-edgestore-position``) so the replica can wait for exactly that.

Blocking (an ``httpx.Client``, which is thread-safe and keeps its connections alive); the
replica store calls it on a worker thread.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import (
    AuthError,
    EdgestoreError,
    InvalidRequest,
    PermissionDenied,
    ReplicationError,
)
from ..hrana.errors import exception_of
from ..hrana.wire import (
    AutocommitResponse,
    BatchResponse,
    ExecuteResponse,
    PipelineResponse,
    StreamResult,
    decode_pipeline,
    encode_stmt,
    failure_of,
    result_of,
)
from ..storage.results import Params, Result
from .position import POSITION_HEADER, Position, parse_position

__all__ = ["HranaForwarder", "PipelineReply"]


@dataclass(slots=True)
class PipelineReply:
    """One pipeline round trip: per-request results (or errors), the baton, the position."""

    results: list[Result | Exception]
    baton: str | None
    position: Position | None
    autocommit: bool | None = None  # from a get_autocommit request, when one was sent
    raw: tuple[StreamResult, ...] = ()  # the primary's result items, typed


class HranaForwarder:
    """A Hrana-over-HTTP client for one primary URL."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url.replace("libsql://", "https://", 1))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ReplicationError(f"replica_of must be an http(s):// or libsql:// URL: {url!r}")
        self.where = f"{parsed.hostname}:{parsed.port or ''}".rstrip(":")
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        # retries=1: a connection that cannot be made is tried once more (nothing was sent);
        # a kept-alive connection the primary closed is dropped from the pool before reuse.
        self._client = httpx.Client(
            base_url=f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}",
            headers=headers,
            timeout=timeout,
            transport=httpx.HTTPTransport(retries=1),
        )

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._client.close()

    def _post(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        try:
            resp = self._client.post(path, content=json.dumps(body).encode())
        except httpx.HTTPError as exc:
            raise ReplicationError(f"the primary at {self.where} is unreachable: {exc}") from exc
        if resp.is_error:
            raise _http_error(resp)
        return resp

    def pipeline(self, requests: Sequence[Mapping[str, Any]], baton: str | None) -> PipelineReply:
        """POST ``v3/pipeline``: run ``requests`` on the stream ``baton`` (None: a new one)."""
        resp = self._post("/v3/pipeline", {"baton": baton, "requests": list(requests)})
        data = decode_pipeline(resp.content)
        results: list[Result | Exception] = []
        autocommit: bool | None = None
        for item in data.results:
            error = failure_of(item)
            if error is not None:
                results.append(error)
                continue
            response = item.response
            if isinstance(response, AutocommitResponse):
                autocommit = response.is_autocommit
            results.append(
                result_of(response.result) if isinstance(response, ExecuteResponse) else Result()
            )
        return PipelineReply(results, data.baton, _position(resp), autocommit, tuple(data.results))

    def execute(
        self, sql: str, params: Params, *, baton: str | None = None, close: bool = True
    ) -> tuple[Result | Exception, str | None, Position | None]:
        """One statement on the primary: (result or the error it raised, baton, position).

        The stream is closed afterwards unless ``close`` is False (inside a transaction the
        baton must be kept even when a statement fails: the transaction is still open).
        """
        reqs: list[dict[str, Any]] = [{"type": "execute", "stmt": encode_stmt(sql, params)}]
        if close:
            reqs.append({"type": "close"})
        out = self.pipeline(reqs, baton)
        first = out.results[0] if out.results else ReplicationError("empty answer from primary")
        return first, out.baton, out.position

    def batch_results(
        self, stmts: Sequence[tuple[str, Params]]
    ) -> tuple[list[Result], Position | None]:
        """``stmts`` atomically on the primary: BEGIN, each step if the previous succeeded,
        COMMIT, ROLLBACK if anything failed (the batch form libSQL clients use). Returns the
        results or raises the first error."""
        steps: list[dict[str, Any]] = [{"stmt": {"sql": "BEGIN IMMEDIATE"}}]
        for i, (sql, params) in enumerate(stmts):
            steps.append({"condition": {"type": "ok", "step": i}, "stmt": encode_stmt(sql, params)})
        n = len(steps)
        steps.append({"condition": {"type": "ok", "step": n - 1}, "stmt": {"sql": "COMMIT"}})
        steps.append(
            {
                "condition": {"type": "not", "cond": {"type": "ok", "step": n}},
                "stmt": {"sql": "ROLLBACK"},
            }
        )
        body = {
            "baton": None,
            "requests": [{"type": "batch", "batch": {"steps": steps}}, {"type": "close"}],
        }
        resp = self._post("/v3/pipeline", body)
        data: PipelineResponse = decode_pipeline(resp.content)
        if not data.results:
            raise ReplicationError("empty answer from the primary")
        item = data.results[0]
        error = failure_of(item)
        if error is not None:
            raise error
        if not isinstance(item.response, BatchResponse):
            raise ReplicationError("the primary did not answer the batch with a batch result")
        batch = item.response.result
        for err in batch.step_errors:
            if err is not None:
                raise exception_of(err)
        raw = batch.step_results[1 : 1 + len(stmts)]
        if len(raw) != len(stmts):
            raise ReplicationError("the primary did not run the whole batch")
        results = []
        for r in raw:
            if r is None:
                raise ReplicationError("the primary did not run the whole batch")
            results.append(result_of(r))
        return results, _position(resp)

    def primary_position(self, timeout: float = 2.0) -> Position | None:
        """The primary's position from ``GET /replication`` (None where not served, e.g. by
        Turso, or when the primary does not answer within ``timeout``)."""
        try:
            resp = self._client.get("/replication", timeout=timeout)
            if resp.status_code != httpx.codes.OK:
                return None
            return parse_position(str(resp.json()["position"]))
        except (httpx.HTTPError, ValueError, KeyError, TypeError, InvalidRequest):
            return None


def _position(resp: httpx.Response) -> Position | None:
    raw = resp.headers.get(POSITION_HEADER)
    return parse_position(raw) if raw else None


def _http_error(resp: httpx.Response) -> EdgestoreError:
    try:
        body = resp.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and "message" in err:
        if resp.status_code == httpx.codes.FORBIDDEN:
            return PermissionDenied(f"the primary refused this replica's token: {err['message']}")
        if resp.status_code == httpx.codes.UNAUTHORIZED:
            return AuthError(f"the primary refused this replica's token: {err['message']}")
        return exception_of(err)
    return ReplicationError(f"the primary answered HTTP {resp.status_code}: {resp.text[:200]}")
