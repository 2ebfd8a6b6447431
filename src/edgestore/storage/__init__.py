"""SQLite storage: the Store, its pool, results, and the blocking facade.

``open()`` / ``connect()`` here open a plain store (no cache, no replica node);
``edgestore.open()`` / ``edgestore.connect()`` compose it with its cache (README, "Layout").
"""

from __future__ import annotations

from .factory import open
from .pool import Hold, Pool, PoolStats
from .results import Column, Description, Params, Result, Row, TableDeps, Value
from .store import Store
from .streaming import RowStream
from .sync import SyncSession, SyncStore, SyncTransaction, connect
from .transaction import Session, Transaction
from .versions import TableVersions

__all__ = [
    "Column",
    "Description",
    "Hold",
    "Params",
    "Pool",
    "PoolStats",
    "Result",
    "Row",
    "RowStream",
    "Session",
    "Store",
    "SyncSession",
    "SyncStore",
    "SyncTransaction",
    "TableDeps",
    "TableVersions",
    "Transaction",
    "Value",
    "connect",
    "open",
]
