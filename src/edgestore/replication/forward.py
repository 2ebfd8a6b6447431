"""Writes of a replica node, sent to the primary over Hrana (HTTP, ``v3/pipeline``).

Why not ``libsql``'s own forwarding: libsql 0.1.11 sends Python integers beyond 32 bits as
floats, which would silently change data. This client encodes values exactly, keeps a stream
(baton) open across an explicit transaction, and reads the replication position the primary
returns (``x-edgestore-position``) so the replica can wait for exactly that.

Blocking (``http.client``); the replica store calls it on a worker thread.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    ConstraintViolation,
    DatabaseError,
    InvalidRequest,
    ProtocolError,
    ReplicationError,
    SQLSyntaxError,
    TransactionTimeout,
)
from ..storage.results import Column, Description, Params, Result, Value
from .primary import POSITION_HEADER, Position, parse_position

__all__ = ["HranaForwarder", "Outcome"]


def encode_value(value: Value) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool | int):
        return {"type": "integer", "value": str(int(value))}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, str):
        return {"type": "text", "value": value}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "blob", "base64": base64.b64encode(bytes(value)).decode()}
    raise ReplicationError(f"cannot send a {type(value).__name__} as an SQL value")


def decode_value(raw: Mapping[str, Any]) -> Value:
    kind = raw.get("type")
    if kind == "integer":
        return int(raw["value"])
    if kind == "float":
        return float(raw["value"])
    if kind == "text":
        return str(raw["value"])
    if kind == "blob":
        data = str(raw["base64"])
        return base64.b64decode(data + "=" * (-len(data) % 4))
    return None


def stmt(sql: str, params: Params) -> dict[str, Any]:
    out: dict[str, Any] = {"sql": sql, "want_rows": True}
    if isinstance(params, Mapping):
        out["named_args"] = [
            {"name": k if k[:1] in (":", "@", "$") else f":{k}", "value": encode_value(v)}
            for k, v in params.items()
        ]
    elif params is not None:
        out["args"] = [encode_value(v) for v in params]
    return out


def result_of(raw: Mapping[str, Any]) -> Result:
    cols = tuple(Column(c.get("name") or "", c.get("decltype")) for c in raw.get("cols", ()))
    values = [tuple(decode_value(v) for v in row) for row in raw.get("rows", ())]
    rowid = raw.get("last_insert_rowid")
    return Result(
        cols,
        values,
        rows_affected=int(raw.get("affected_row_count") or 0),
        last_insert_rowid=int(rowid) if rowid is not None else None,
    )


def wire_description(raw: Mapping[str, Any]) -> Description:
    """A Hrana DescribeResult from the primary as a storage Description."""
    return Description(
        columns=tuple(Column(c.get("name") or "", c.get("decltype")) for c in raw.get("cols", ())),
        params=tuple(p.get("name") for p in raw.get("params", ())),
        is_readonly=bool(raw.get("is_readonly")),
        is_explain=bool(raw.get("is_explain")),
    )


def error_of(raw: Mapping[str, Any]) -> Exception:
    """The edgestore error for a Hrana error from the primary (same classes as locally)."""
    message = str(raw.get("message", "error from the primary"))
    code = str(raw.get("code") or "SQLITE_ERROR")
    if code.startswith("SQLITE_CONSTRAINT"):
        return ConstraintViolation(message, code=code, base_code="SQLITE_CONSTRAINT")
    if code in ("SQL_PARSE_ERROR", "SQL_NO_STATEMENT", "SQL_MANY_STATEMENTS"):
        return SQLSyntaxError(message, code="SQLITE_ERROR")
    if code == "TRANSACTION_TIMEOUT":
        return TransactionTimeout(message)
    if code.startswith("SQLITE_"):
        return DatabaseError(message, code=code, base_code="_".join(code.split("_")[:2]))
    return ProtocolError(message, code=code)


@dataclass(slots=True)
class Outcome:
    """One pipeline round trip: per-request results (or errors), the baton, the position."""

    results: list[Result | Exception]
    baton: str | None
    position: Position | None
    autocommit: bool | None = None  # from a get_autocommit request, when one was sent
    raw: list[Mapping[str, Any]] = field(default_factory=list)  # the primary's result items


class HranaForwarder:
    """A tiny Hrana-over-HTTP client for one primary URL (one keep-alive connection per thread)."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url.replace("libsql://", "https://", 1))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ReplicationError(f"replica_of must be an http(s):// or libsql:// URL: {url!r}")
        self.https = parsed.scheme == "https"
        self.host = parsed.hostname
        self.port = parsed.port or (443 if self.https else 80)
        self.base = parsed.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []  # every thread's, for close()
        self._all_lock = threading.Lock()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close the keep-alive connections of every thread."""
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any, str]:
        """One HTTP request to the primary: (status, headers, body text). Retries once on a
        dropped keep-alive connection; an unreachable primary raises ReplicationError."""
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        for attempt in (0, 1):
            reused = getattr(self._local, "conn", None) is not None
            conn = self._conn()
            try:
                conn.request(method, self.base + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read().decode("utf-8", "replace")
                return resp.status, resp.headers, data
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                # Retry only a kept-alive connection the server had already closed: the
                # request never reached it, so a write cannot be applied twice.
                stale = reused and isinstance(
                    exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
                )
                if attempt == 1 or not stale:
                    raise ReplicationError(
                        f"the primary at {self.host}:{self.port} is unreachable: {exc}"
                    ) from exc
        raise AssertionError("unreachable")

    def pipeline(self, requests: Sequence[Mapping[str, Any]], baton: str | None) -> Outcome:
        """POST ``v3/pipeline``: run ``requests`` on the stream ``baton`` (None: a new one)."""
        body = json.dumps({"baton": baton, "requests": list(requests)}).encode()
        status, headers, text = self.request("POST", "/v3/pipeline", body)
        if status >= 400:
            raise _http_error(status, text)
        data = json.loads(text)
        results: list[Result | Exception] = []
        autocommit: bool | None = None
        for item in data.get("results", ()):
            if item.get("type") == "ok":
                response = item.get("response", {})
                if response.get("type") == "get_autocommit":
                    autocommit = bool(response.get("is_autocommit"))
                if response.get("type") == "execute":
                    results.append(result_of(response["result"]))
                else:
                    results.append(Result())
            else:
                results.append(error_of(item.get("error", {})))
        raw_position = headers.get(POSITION_HEADER)
        position = parse_position(raw_position) if raw_position else None
        return Outcome(results, data.get("baton"), position, autocommit, data.get("results", []))

    def execute(
        self, sql: str, params: Params, *, baton: str | None = None, close: bool = True
    ) -> tuple[Result | Exception, str | None, Position | None]:
        """One statement on the primary: (result or the error it raised, baton, position).

        The stream is closed afterwards unless ``close`` is False (inside a transaction the
        baton must be kept even when a statement fails: the transaction is still open).
        """
        reqs: list[dict[str, Any]] = [{"type": "execute", "stmt": stmt(sql, params)}]
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
            steps.append({"condition": {"type": "ok", "step": i}, "stmt": stmt(sql, params)})
        n = len(steps)
        steps.append({"condition": {"type": "ok", "step": n - 1}, "stmt": {"sql": "COMMIT"}})
        steps.append(
            {
                "condition": {"type": "not", "cond": {"type": "ok", "step": n}},
                "stmt": {"sql": "ROLLBACK"},
            }
        )
        body = json.dumps(
            {
                "baton": None,
                "requests": [{"type": "batch", "batch": {"steps": steps}}, {"type": "close"}],
            }
        ).encode()
        status, headers, text = self.request("POST", "/v3/pipeline", body)
        if status >= 400:
            raise _http_error(status, text)
        data = json.loads(text)
        item = data["results"][0]
        if item.get("type") != "ok":
            raise error_of(item.get("error", {}))
        batch = item["response"]["result"]
        for err in batch.get("step_errors", ()):
            if err is not None:
                raise error_of(err)
        raw = batch.get("step_results", [])[1 : 1 + len(stmts)]
        if len(raw) != len(stmts) or any(r is None for r in raw):
            raise ReplicationError("the primary did not run the whole batch")
        raw_position = headers.get(POSITION_HEADER)
        position = parse_position(raw_position) if raw_position else None
        return [result_of(r) for r in raw], position

    def primary_position(self, timeout: float = 2.0) -> Position | None:
        """The primary's position from ``GET /replication`` (None where not served, e.g. by
        Turso, or when the primary does not answer within ``timeout``)."""
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=timeout)
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            conn.request("GET", self.base + "/replication", headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            if resp.status != 200:
                return None
            return parse_position(str(json.loads(text)["position"]))
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
            return None
        except InvalidRequest:
            return None
        finally:
            conn.close()


def _http_error(status: int, text: str) -> Exception:
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and "message" in err:
            exc = error_of(err)
            if status in (401, 403):
                from ..errors import AuthError, PermissionDenied

                cls = PermissionDenied if status == 403 else AuthError
                return cls(f"the primary refused this replica's token: {err['message']}")
            return exc
    return ReplicationError(f"the primary answered HTTP {status}: {text[:200]}")
