"""Shutdown ends a long-running request once: its cleanup is not cancelled again.

The signal handler and then the lifespan shutdown both end every tracked request. A second
cancel landed in the WebSocket handler's cleanup while it rolled its streams back, and the
shutdown failed before it checkpointed the WAL (tests/web/test_shutdown_streams.py shows the
whole-server effect).
"""

from __future__ import annotations

import asyncio

from edgestore.web.drain import Drain


def test_a_request_ended_twice_is_cancelled_once() -> None:
    async def scenario() -> tuple[int, bool]:
        drain = Drain()
        cleanup_started = asyncio.Event()
        cancels = 0
        cleaned_up = False

        async def request() -> None:
            nonlocal cancels, cleaned_up
            with drain.track({}):
                try:
                    await asyncio.sleep(60)
                except asyncio.CancelledError:
                    cancels += 1
                    cleanup_started.set()
                    try:
                        await asyncio.sleep(0.05)  # rolling back what it holds
                    except asyncio.CancelledError:
                        cancels += 1
                        raise
                    cleaned_up = True
                    raise

        task = asyncio.create_task(request())
        await asyncio.sleep(0)
        drain.begin()  # the signal
        await cleanup_started.wait()
        await drain.end_all()  # the lifespan shutdown
        await asyncio.gather(task, return_exceptions=True)
        return cancels, cleaned_up

    assert asyncio.run(scenario()) == (1, True)
