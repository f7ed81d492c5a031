"""Cancellation that `asyncio.wait_for` loses on Python 3.11 (CPython gh-86296) still stops a
service loop: `wait_for_event` waits without it, and `lost_cancellation` re-raises one a library
call swallowed."""

from __future__ import annotations

import asyncio

import pytest

from asyncfn.engine.service import lost_cancellation, wait_for_event


async def test_a_cancellation_a_library_wait_for_swallowed_is_raised_again() -> None:
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    returned: list[int] = []

    async def consume() -> None:
        while True:  # a source's loop around a library call built on wait_for
            returned.append(await asyncio.wait_for(asyncio.shield(done), 10))
            lost_cancellation()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    done.set_result(1)
    task.cancel()  # in the turn the awaited future completes
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled()


async def test_nothing_is_raised_without_a_cancellation() -> None:
    lost_cancellation()
    event = asyncio.Event()
    event.set()
    assert await wait_for_event(event, 1)
