"""What the Hrana layer needs from storage, as structural types.

``edgestore.storage.Store`` and its ``Session`` satisfy them. Typing against the shape (not the
class) keeps this package importable and testable on its own and documents the exact surface
Hrana relies on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from ..config import Settings
from .values import Value

__all__ = [
    "ColumnLike",
    "DepsLike",
    "DescriptionLike",
    "Params",
    "ResultLike",
    "RowStreamLike",
    "SessionLike",
    "StoreLike",
]

Params = Sequence[Value] | Mapping[str, Value] | None


class ColumnLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def decltype(self) -> str | None: ...


class ResultLike(Protocol):
    @property
    def columns(self) -> Sequence[ColumnLike]: ...
    @property
    def values(self) -> Sequence[Sequence[Value]]: ...
    @property
    def rows_affected(self) -> int: ...
    @property
    def last_insert_rowid(self) -> int | None: ...
    @property
    def truncated(self) -> bool: ...


class RowStreamLike(Protocol):
    """``Session.stream()``: a statement's rows in chunks as they are produced.

    ``start()`` runs it up to its first chunk (raising its error); iterating gives lists of
    rows; ``rows_affected`` / ``last_insert_rowid`` are final after ``start()``; ``aclose()``
    gives the connection back.
    """

    @property
    def columns(self) -> Sequence[ColumnLike]: ...
    @property
    def rows_affected(self) -> int: ...
    @property
    def last_insert_rowid(self) -> int | None: ...
    async def start(self) -> Sequence[ColumnLike]: ...
    def __aiter__(self) -> AsyncIterator[Sequence[Sequence[Value]]]: ...
    async def aclose(self) -> None: ...


class DescriptionLike(Protocol):
    @property
    def columns(self) -> Sequence[ColumnLike]: ...
    @property
    def params(self) -> Sequence[str | None]: ...
    @property
    def is_readonly(self) -> bool: ...
    @property
    def is_explain(self) -> bool: ...


class DepsLike(Protocol):
    @property
    def readonly(self) -> bool: ...


class SessionLike(Protocol):
    @property
    def is_autocommit(self) -> bool: ...
    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> ResultLike: ...
    async def describe(self, sql: str) -> DescriptionLike: ...
    async def close(self) -> None: ...

    # Optional (looked up with getattr; sessions without it are read whole, then chunked):
    # def stream(self, sql, params=None, *, chunk_rows: int) -> RowStreamLike


class StoreLike(Protocol):
    @property
    def settings(self) -> Settings: ...
    async def session(self) -> SessionLike: ...
    async def describe(self, sql: str) -> DescriptionLike: ...
    def deps(self, sql: str) -> DepsLike: ...
