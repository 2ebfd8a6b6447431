"""What every route handler closes over: the store, settings, authenticator, memory monitor."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..auth import Authenticator
from ..config import Settings
from ..memory.streams import StreamBuffers
from .drain import Drain
from .hotcache import HotCache

if TYPE_CHECKING:
    from ..memory import MemoryMonitor
    from ..storage import Store
    from .metrics import Metrics

__all__ = ["ESSENTIAL_OPT", "ROLE_OPT", "AppState"]

ROLE_OPT = "edgestore_role"
"""Route ``opt`` key: the least :class:`~edgestore.auth.Role` a caller needs (absent: public)."""
ESSENTIAL_OPT = "edgestore_essential"
"""Route ``opt`` key: True for routes that keep answering under emergency memory pressure."""


@dataclass(slots=True, eq=False)
class AppState:
    """Shared by the routes of one app. ``store`` and ``memory`` are set by the lifespan."""

    settings: Settings
    authenticator: Authenticator
    metrics: Metrics
    store_or_none: Store | None = None
    memory: MemoryMonitor | None = None  # set once started (None before startup)
    history: Any = None  # edgestore.web.history.History while the app runs
    queries: Any = None  # edgestore.web.query_stats.QueryStats while the app runs
    hot: HotCache = field(default_factory=HotCache)
    buffers: StreamBuffers = field(default_factory=StreamBuffers)
    """Bytes held for WebSockets and Hrana streams (the memory breakdown's ``streams``)."""
    drain: Drain = field(default_factory=Drain)
    started_at: float = field(default_factory=time.time)

    @property
    def store(self) -> Store:
        if self.store_or_none is None:
            from ..errors import StoreClosedError

            raise StoreClosedError("the store is not open (server starting or stopping)")
        return self.store_or_none
