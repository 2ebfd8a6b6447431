"""BodyDeadlines (web/body_deadline.py): one timer bounds every body read of an app."""

from __future__ import annotations

import asyncio

import pytest

from edgestore.errors import RequestTimeout
from edgestore.web.body_deadline import BodyDeadlines


async def test_a_read_that_never_completes_times_out() -> None:
    deadlines = BodyDeadlines(0.05)
    never = asyncio.Event()
    with pytest.raises(RequestTimeout, match=r"did not arrive within 0\.05s"):
        await deadlines.read(never.wait())
    # The task is usable afterwards: the timeout's cancellation was taken back.
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0)


async def test_reads_that_complete_are_not_touched() -> None:
    deadlines = BodyDeadlines(0.05)

    async def message() -> dict[str, object]:
        await asyncio.sleep(0.01)
        return {"type": "http.request", "body": b"{}"}

    for _ in range(3):
        assert (await deadlines.read(message()))["body"] == b"{}"
    await asyncio.sleep(0.1)  # past the deadline of every read above: nothing is cancelled
    assert (await deadlines.read(message()))["type"] == "http.request"


async def test_other_cancellations_stay_cancellations() -> None:
    deadlines = BodyDeadlines(10)
    started = asyncio.Event()

    async def reader() -> None:
        started.set()
        await deadlines.read(asyncio.Event().wait())

    task = asyncio.create_task(reader())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_many_concurrent_reads_each_end_at_their_deadline() -> None:
    deadlines = BodyDeadlines(0.05)

    async def stuck() -> str:
        try:
            await deadlines.read(asyncio.Event().wait())
        except RequestTimeout:
            return "timeout"
        return "read"

    async def quick() -> str:
        await deadlines.read(asyncio.sleep(0.001))
        return "read"

    results = await asyncio.gather(*(stuck() for _ in range(5)), *(quick() for _ in range(5)))
    assert results == ["timeout"] * 5 + ["read"] * 5
