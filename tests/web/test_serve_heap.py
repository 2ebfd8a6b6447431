"""`edgestore serve` freezes the heap its startup built, so that full garbage collections
under load walk only what requests made (cli/server_runner.py ``settle_heap``)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from edgestore.cli.server_runner import _StartupGuard


async def test_startup_freezes_the_heap_before_the_first_request() -> None:
    frozen_at_startup: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        frozen_at_startup.append(gc.get_freeze_count())

    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    gc.unfreeze()
    guard = _StartupGuard(app)
    try:
        assert gc.get_freeze_count() == 0
        events.put_nowait({"type": "lifespan.startup"})
        events.put_nowait({"type": "lifespan.shutdown"})
        await guard({"type": "lifespan"}, events.get, send)
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        await guard({"type": "http"}, events.get, send)
        assert frozen_at_startup
        assert frozen_at_startup[0] > 0
    finally:
        gc.unfreeze()  # the rest of the test session collects as before
