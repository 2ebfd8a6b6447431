"""Hrana over HTTP, framework-free: request bodies in, response bodies out.

* v1 (``/v1/execute``, ``/v1/batch``): one stateless stream per request.
* v2/v3 pipeline: ``{"baton", "requests"}`` -> ``{"baton", "base_url", "results"}``; every
  request runs even when an earlier one failed; batons come from :class:`StreamRegistry`.
* v3 cursor: newline-delimited JSON, the first line carrying the next baton, then each step's
  entries as SQLite produces its rows, written a chunk (256 rows) at a time: memory is bounded
  by a chunk, not by the result. A client that goes away mid-cursor ends the statement and
  releases its connection (the stream is closed, its transaction rolled back).
* execute/batch results (v1, pipeline) are bounded by ``max_response_bytes`` per HTTP request
  (RESPONSE_TOO_LARGE beyond it); cursors are the way to read more.

Request-level failures (malformed JSON, a bad baton) raise :class:`ProtocolError`; the web
layer turns them into an error status with the Hrana error body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import msgspec

from ..errors import EdgestoreError, ProtocolError
from .backend import StoreLike
from .batons import Entry, StreamRegistry
from .errors import error_of
from .framing import decode_object
from .point_read import pipeline_error, pipeline_ok, point_result, point_stmt
from .quota import CallerShare, Quotas
from .stream import ResponseBudget, Stream

__all__ = ["HranaHttp", "decode_body", "pipeline_request"]

_encode = msgspec.json.Encoder().encode
_V1_HEAD = b'{"result":'


def decode_body(body: bytes) -> Mapping[str, Any]:
    """The JSON object of a request body; ProtocolError when it is not one."""
    return decode_object(body, "the request body")


def pipeline_request(body: bytes) -> tuple[list[Any], Any]:
    """The requests and the baton of a pipeline request body; ProtocolError when it is not
    one (the baton itself is checked when a stream is taken)."""
    req = decode_body(body)
    requests = req.get("requests")
    if not isinstance(requests, list):
        raise ProtocolError("the request needs a requests array")
    return requests, req.get("baton")


class HranaHttp:
    """The HTTP side of Hrana for one store; owns the registry of baton streams."""

    def __init__(
        self,
        store: StoreLike,
        *,
        idle_timeout: float | None = None,
        quotas: Quotas | None = None,
        point_reads: bool = True,
    ) -> None:
        self.store = store
        self.quotas = quotas
        """Per-caller shares (streams, held readers and writer); None: no shares."""
        self.point_reads = point_reads
        """Answer ``[execute <read>, close]`` on a new stream, and a v1 execute of a read, in
        one step (point_read.py); False: always the general path (tests compare the two)."""
        timeout = store.settings.stream_idle_timeout if idle_timeout is None else idle_timeout
        self.registry = StreamRegistry(store, idle_timeout=timeout)

    async def close(self) -> None:
        """Close every open stream (their transactions roll back)."""
        await self.registry.close()

    # --- v1 ------------------------------------------------------------------------------
    async def v1_execute(self, body: bytes, *, readonly: bool) -> bytes:
        """``POST /v1/execute``: ``{"stmt"}`` -> ``{"result": StmtResult}``; errors raise."""
        req = decode_body(body)
        stmt = req.get("stmt")
        if not isinstance(stmt, Mapping):
            raise ProtocolError("the request needs a stmt object")
        if (
            self.point_reads
            and type(stmt) is dict
            and type(stmt.get("sql")) is str
            and stmt.get("sql_id") is None
        ):
            # A read in one step, as a pipeline's [execute, close] (point_read.py); an error
            # goes to the general path, which raises it as it always has.
            try:
                result = await self._point_result(stmt, readonly)
            except EdgestoreError:
                result = None
            if result is not None:
                return _V1_HEAD + result + b"}"
        stream = Stream(self.store, readonly=readonly)
        try:
            result_obj = await stream.execute(stmt)
        finally:
            await stream.close()
        return _encode({"result": result_obj})

    async def v1_batch(self, body: bytes, *, readonly: bool) -> bytes:
        """``POST /v1/batch``: ``{"batch"}`` -> ``{"result": BatchResult}``."""
        req = decode_body(body)
        stream = Stream(self.store, readonly=readonly)
        try:
            result = await stream.batch(req.get("batch"))
        finally:
            await stream.close()
        return _encode({"result": result})

    # --- v2 / v3 pipeline ----------------------------------------------------------------
    def _share(self, caller: str | None) -> CallerShare | None:
        return None if self.quotas is None or caller is None else self.quotas.share(caller)

    def _may_open_stream(self, caller: str | None) -> bool:
        """Whether a new stream would be let in (else the general path refuses it)."""
        if len(self.registry) >= self.registry.max_streams:
            return False
        return self.quotas is None or caller is None or self.quotas.may_open_stream(caller)

    async def pipeline(
        self, body: bytes, *, owner: str, readonly: bool, caller: str | None = None
    ) -> bytes:
        """``POST /v2/pipeline`` and ``/v3/pipeline``; ``caller`` names the caller's share."""
        requests, baton = pipeline_request(body)
        answer = await self.point_pipeline(requests, baton, readonly=readonly, caller=caller)
        if answer is not None:
            return answer
        return await self.run_pipeline(
            requests, baton, owner=owner, readonly=readonly, caller=caller
        )

    async def point_pipeline(
        self, requests: list[Any], baton: Any, *, readonly: bool, caller: str | None
    ) -> bytes | None:
        """The response to a pipeline ``[execute <read>, close]`` on a new stream, answered
        in one step (point_read.py); None for any other pipeline (nothing has run then, or
        only a read that :meth:`run_pipeline` runs again). ``caller`` may be None when the
        quotas hold no share yet (it is only asked whether it may open a stream)."""
        if baton is not None or not self.point_reads:
            return None
        stmt = point_stmt(requests)
        if stmt is None or not self._may_open_stream(caller):
            return None
        try:
            result = await self._point_result(stmt, readonly)
        except EdgestoreError as exc:
            return pipeline_error(exc)
        return None if result is None else pipeline_ok(result)

    async def _point_result(self, stmt: Mapping[str, Any], readonly: bool) -> bytes | None:
        """The one-step read of ``stmt`` (point_read.py), or None when it needs the general
        path."""
        return await point_result(
            self.store,
            stmt,
            readonly=readonly,
            max_response_bytes=self.store.settings.max_response_bytes,
        )

    async def run_pipeline(
        self,
        requests: list[Any],
        baton: Any,
        *,
        owner: str,
        readonly: bool,
        caller: str | None = None,
    ) -> bytes:
        """The general path of a pipeline: every request on the baton's stream."""
        entry = self.registry.take(baton, owner=owner, readonly=readonly, share=self._share(caller))
        failed = True
        try:
            stream = entry.stream
            results: list[dict[str, Any]] = []
            budget = ResponseBudget(self.store.settings.max_response_bytes)
            async with stream.lock:
                for item in requests:
                    try:
                        response = await stream.request(item, budget)
                        results.append({"type": "ok", "response": response})
                    except Exception as exc:
                        results.append({"type": "error", "error": error_of(exc)})
            failed = False
        finally:
            self.registry.release(entry, failed=failed)
        return _encode(
            {"baton": self.registry.baton_for(entry), "base_url": None, "results": results}
        )

    # --- v3 cursor -----------------------------------------------------------------------
    def cursor(
        self, body: bytes, *, owner: str, readonly: bool, caller: str | None = None
    ) -> AsyncIterator[bytes]:
        """``POST /v3/cursor``. Checks the request and the baton now (so failures become an
        error status); the returned iterator produces the body as the batch runs."""
        req = decode_body(body)
        batch = req.get("batch")
        if not isinstance(batch, Mapping):
            raise ProtocolError("the request needs a batch object")
        entry = self.registry.take(
            req.get("baton"), owner=owner, readonly=readonly, share=self._share(caller)
        )
        return _CursorBody(self.registry, entry, self._cursor_body(entry, batch))

    async def _cursor_body(self, entry: Entry, batch: Mapping[str, Any]) -> AsyncIterator[bytes]:
        failed = True
        try:
            stream = entry.stream
            async with stream.lock:
                # The next baton goes first; the stream stays busy (unusable) until the end.
                head = {"baton": self.registry.baton_for(entry), "base_url": None}
                yield _encode(head) + b"\n"
                try:
                    async with aclosing(stream.cursor_chunks(batch)) as groups:
                        async for group in groups:
                            yield b"".join(_encode(e) + b"\n" for e in group)
                except EdgestoreError as exc:  # a bad batch, or the caller's share ran out
                    yield _encode({"type": "error", "error": error_of(exc)}) + b"\n"
            failed = False
        finally:
            self.registry.release(entry, failed=failed)


class _CursorBody:
    """The cursor response body. If the server never starts sending it (the client left
    first), the stream it took is released here rather than staying busy forever."""

    def __init__(self, registry: StreamRegistry, entry: Entry, body: AsyncIterator[bytes]) -> None:
        self._registry = registry
        self._entry = entry
        self._body = body
        self._started = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        self._started = True
        return await anext(self._body)

    async def aclose(self) -> None:
        self._started = True
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None:
            await aclose()

    def __del__(self) -> None:
        if not self._started:
            self._started = True
            try:
                self._registry.release(self._entry, failed=True)
            except RuntimeError:  # no running loop any more (interpreter shutdown)
                return
