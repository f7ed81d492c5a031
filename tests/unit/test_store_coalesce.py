"""Coalescer: concurrent calls of one key merged into one call, in order; a failing merged
call retried item by item; the helpers that merge and split callers' submissions."""

from __future__ import annotations

import asyncio

import pytest

from asyncfn.domain.models import Submission, Submitted
from asyncfn.domain.states import TaskStatus
from asyncfn.store.coalesce import Coalescer, merged_calls, split_answers

pytestmark = pytest.mark.timeout(10)


class Recorder:
    """A `many` that records its calls, can be held open, and refuses the item 13."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def many(self, key: str, items: list[int]) -> list[int]:
        self.calls.append((key, list(items)))
        await self.gate.wait()
        if 13 in items:
            raise ValueError("13 is refused")
        return [x * 10 for x in items]


async def test_a_lone_caller_runs_at_once_and_later_callers_go_together_in_order() -> None:
    rec = Recorder()
    co: Coalescer[str, int, int] = Coalescer(rec.many, in_flight=1)
    rec.gate.clear()
    first = asyncio.ensure_future(co.run("a", 1))
    await asyncio.sleep(0)
    followers = [asyncio.ensure_future(co.run("a", x)) for x in (2, 3, 4)]
    other = asyncio.ensure_future(co.run("b", 9))
    await asyncio.sleep(0)
    rec.gate.set()

    assert await asyncio.gather(first, *followers, other) == [10, 20, 30, 40, 90]
    assert rec.calls == [("a", [1]), ("b", [9]), ("a", [2, 3, 4])]
    await co.close()
    assert co._waiting == {}


async def test_a_failing_merged_call_is_retried_alone_and_only_the_culprit_fails() -> None:
    rec = Recorder()
    co: Coalescer[str, int, int] = Coalescer(rec.many, in_flight=1)
    rec.gate.clear()
    first = asyncio.ensure_future(co.run("a", 1))
    await asyncio.sleep(0)
    followers = [asyncio.ensure_future(co.run("a", x)) for x in (2, 13, 3)]
    await asyncio.sleep(0)
    rec.gate.set()

    results = await asyncio.gather(first, *followers, return_exceptions=True)

    assert results[:2] == [10, 20] and results[3] == 30
    assert isinstance(results[2], ValueError)
    assert rec.calls == [("a", [1]), ("a", [2, 13, 3]), ("a", [2]), ("a", [13]), ("a", [3])]


async def test_merged_calls_hold_at_most_max_items_and_close_waits_for_them() -> None:
    rec = Recorder()
    co: Coalescer[str, int, int] = Coalescer(rec.many, in_flight=1, max_items=2)
    rec.gate.clear()
    first = asyncio.ensure_future(co.run("a", 0))
    await asyncio.sleep(0)
    followers = [asyncio.ensure_future(co.run("a", x)) for x in range(1, 6)]
    await asyncio.sleep(0)
    rec.gate.set()
    await first
    await co.close()

    assert all(f.done() for f in followers)
    assert [items for _, items in rec.calls] == [[0], [1, 2], [3, 4], [5]]


async def test_up_to_in_flight_callers_run_at_once_and_the_rest_wait_for_room() -> None:
    rec = Recorder()
    co: Coalescer[str, int, int] = Coalescer(rec.many, in_flight=2)
    rec.gate.clear()
    calls = [asyncio.ensure_future(co.run("a", x)) for x in range(1, 6)]
    await asyncio.sleep(0)

    assert rec.calls == [("a", [1]), ("a", [2])]  # 3, 4 and 5 wait for room
    rec.gate.set()
    assert await asyncio.gather(*calls) == [10, 20, 30, 40, 50]
    await co.close()
    assert rec.calls[2:] == [("a", [3, 4, 5])]
    assert co._running == {} and co._waiting == {}


async def test_waiting_callers_are_answered_when_their_merged_call_is_cancelled() -> None:
    held = asyncio.Event()
    never = asyncio.Event()

    async def many(key: str, items: list[int]) -> list[int]:
        if items != [1]:  # the merged call hangs until cancelled
            held.set()
            await never.wait()
        return items

    co: Coalescer[str, int, int] = Coalescer(many, in_flight=1)
    gate = asyncio.Event()

    async def first_call(key: str, items: list[int]) -> list[int]:
        await gate.wait()
        return await many(key, items)

    co._many = first_call
    first = asyncio.ensure_future(co.run("a", 1))
    await asyncio.sleep(0)
    followers = [asyncio.ensure_future(co.run("a", x)) for x in (2, 3)]
    await asyncio.sleep(0)
    gate.set()
    await first
    await held.wait()
    for drain in list(co._drains):
        drain.cancel()

    results = await asyncio.gather(*followers, return_exceptions=True)

    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert co._running == {} and co._waiting == {}


def test_merged_calls_take_the_latest_clock_and_split_answers_back_per_caller() -> None:
    a, b, c = Submission(b"a"), Submission(b"b"), Submission(b"c")
    calls = [(10.0, [a, b]), (12.0, [c])]

    now, flat = merged_calls(calls)
    answers = [Submitted(str(i), TaskStatus.ENQUEUED, True, i) for i in range(3)]

    assert (now, flat) == (12.0, [a, b, c])
    assert split_answers(calls, answers) == [answers[:2], answers[2:]]
