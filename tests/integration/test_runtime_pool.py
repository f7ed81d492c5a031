"""Pool control on real instances: stop, suspend, cancel, idle reaping, shutdown."""

from __future__ import annotations

import asyncio
import os

import pytest

from asyncfn.domain.outcomes import InstanceExited


async def test_stop_task_ends_the_attempt_as_stopped(runtime):
    pool = runtime.pool("import time\n\ndef handler(event, context):\n    time.sleep(60)\n")
    a = runtime.assign()
    run = asyncio.ensure_future(pool.run(a))
    await runtime.until(lambda: runtime.recorder.started)
    (instance,) = pool.instances
    assert pool.busy == 1 and pool.free_slots() == pool.capacity - 1
    assert await pool.stop_task(a.row, grace_s=0.5)
    result = await run
    assert type(result.outcome).__name__ == "Stopped"
    assert runtime.gone(instance.pid)
    assert not await pool.stop_task(a.row)


async def test_suspend_pauses_the_instance_and_its_deadline(runtime):
    pool = runtime.pool(
        "import time\n\ndef handler(event, context):\n    time.sleep(0.6)\n    return 1\n"
    )
    a = runtime.assign(timeout_s=1.0)
    run = asyncio.ensure_future(pool.run(a))
    await runtime.until(lambda: runtime.recorder.started)
    assert pool.suspend_task(a.row)
    (instance,) = pool.instances
    await asyncio.sleep(0.1)
    assert runtime.state_of(instance.pid) == "T"
    await asyncio.sleep(1.0)  # longer than the deadline: suspended time does not count
    assert pool.resume_task(a.row)
    assert (await run).outcome.result == 1


async def test_pool_stop_leaves_no_child_processes(runtime):
    pool = runtime.pool(
        "import time\n\ndef handler(event, context):\n    time.sleep(float(event or 0))\n",
        min_instances=2,
    )
    await pool.stop()  # a stop before start is harmless
    pool = runtime.pool(
        "import time\n\ndef handler(event, context):\n    time.sleep(float(event or 0))\n",
        min_instances=2,
    )
    await pool.start()
    assert len(pool.instances) == 2 and all(i.state == "ready" for i in pool.instances)
    pids = [i.pid for i in pool.instances]
    busy = asyncio.ensure_future(pool.run(runtime.assign(b"30")))
    await runtime.until(lambda: runtime.recorder.started)
    await asyncio.gather(pool.stop(grace_s=0.5), pool.stop(grace_s=0.5))
    await pool.stop()
    outcome = (await busy).outcome
    assert isinstance(outcome, InstanceExited) and outcome.signal == 15
    assert all(runtime.gone(pid) for pid in pids)
    assert runtime.children_of(os.getpid()) == []
    assert isinstance((await pool.run(runtime.assign())).outcome, InstanceExited)


async def test_idle_instances_above_min_exit_after_the_ttl(runtime):
    pool = runtime.pool(
        "import os\n\ndef handler(event, context):\n    return os.getpid()\n", idle_ttl_s=0.2
    )
    pid = (await pool.run(runtime.assign())).outcome.result
    assert await runtime.wait_gone(pid, within_s=3)
    assert pool.instances == ()
    assert (await pool.run(runtime.assign())).outcome.result != pid


async def test_a_cancelled_run_kills_its_instance_and_the_pool_carries_on(runtime):
    pool = runtime.pool(
        "import os, time\n\ndef handler(event, context):\n"
        "    time.sleep(float(event or 0))\n    return os.getpid()\n"
    )
    running = asyncio.ensure_future(pool.run(runtime.assign(b"60")))
    await runtime.until(lambda: runtime.recorder.started)
    (instance,) = pool.instances
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await runtime.wait_gone(instance.pid)
    assert pool.busy == 0
    assert (await pool.run(runtime.assign())).outcome.result != instance.pid


async def test_suspending_twice_still_pauses_the_deadline_each_time(runtime):
    pool = runtime.pool(
        """
        import time

        def handler(event, context):
            for _ in range(8):  # 0.8 s of running, however long it is stopped for
                time.sleep(0.1)
            return 1
        """
    )
    a = runtime.assign(timeout_s=1.2)
    run = asyncio.ensure_future(pool.run(a))
    await runtime.until(lambda: runtime.recorder.started)
    for _ in range(2):
        assert pool.suspend_task(a.row)
        await asyncio.sleep(0.7)
        assert pool.resume_task(a.row)
        await asyncio.sleep(0.1)
    assert (await run).outcome.result == 1
