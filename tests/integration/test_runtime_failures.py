"""How python attempts fail on real instances: raised, crashed, killed, timed out, not imported,
out of memory."""

from __future__ import annotations

import asyncio
import time

from asyncfn.domain.outcomes import InstanceExited, OutOfMemory, Raised, TimedOut


async def test_a_raised_exception_is_reported_with_type_message_and_traceback(runtime):
    pool = runtime.pool(
        """
        class BadInput(ValueError):
            pass

        def handler(event, context):
            raise BadInput(f"cannot use {event!r}")
        """
    )
    outcome = (await pool.run(runtime.assign(b"x"))).outcome
    assert isinstance(outcome, Raised)
    assert (outcome.type, outcome.message, outcome.retryable) == (
        "BadInput",
        "cannot use b'x'",
        True,
    )
    assert outcome.traceback is not None and 'handler.py", line 6, in handler' in outcome.traceback


async def test_memory_error_is_reported_as_out_of_memory(runtime):
    pool = runtime.pool("def handler(event, context):\n    raise MemoryError('too big')\n")
    outcome = (await pool.run(runtime.assign())).outcome
    assert isinstance(outcome, Raised) and outcome.type == "OutOfMemory"


async def test_os_exit_is_instance_exited_and_the_next_task_gets_a_new_instance(runtime):
    pool = runtime.pool(
        """
        import os, sys

        def handler(event, context):
            if event == b"exit":
                print("going away", file=sys.stderr)
                os._exit(3)
            return os.getpid()
        """
    )
    before = await pool.run(runtime.assign())
    crashed = await pool.run(runtime.assign(b"exit"))
    after = await pool.run(runtime.assign())
    assert isinstance(crashed.outcome, InstanceExited)
    assert (crashed.outcome.exit_code, crashed.outcome.signal) == (3, None)
    assert "going away" in crashed.outcome.stderr_tail
    assert crashed.instance_id == before.instance_id
    assert after.instance_id != before.instance_id
    assert after.outcome.result != before.outcome.result
    assert runtime.gone(before.outcome.result)


async def test_a_task_killed_by_a_signal_is_instance_exited_with_that_signal(runtime):
    pool = runtime.pool(
        """
        import os, signal

        def handler(event, context):
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    outcome = (await pool.run(runtime.assign())).outcome
    assert isinstance(outcome, InstanceExited)
    assert (outcome.exit_code, outcome.signal) == (None, 9)


async def test_timeout_kills_the_whole_process_group_including_grandchildren(runtime):
    pool = runtime.pool(
        """
        import subprocess, time

        def handler(event, context):
            child = subprocess.Popen(["sleep", "60"])
            print(f"grandchild {child.pid}", flush=True)
            time.sleep(60)
        """,
        timeout_s=1,
    )
    a = runtime.assign(timeout_s=1.0)
    started = time.monotonic()
    running = asyncio.ensure_future(pool.run(a))
    await runtime.until(lambda: runtime.recorder.lines(a.row, "stdout"))
    (instance,) = pool.instances
    grandchild = int(runtime.recorder.lines(a.row, "stdout")[0].split()[1])
    assert not runtime.gone(grandchild)
    run = await running
    assert isinstance(run.outcome, TimedOut)
    assert run.outcome.timeout_s == 1
    assert 0.9 < time.monotonic() - started < 5
    assert runtime.gone(instance.pid)
    assert await runtime.wait_gone(grandchild)
    assert pool.instances == ()


async def test_a_handler_that_fails_to_import_fails_every_task_fast_without_respawning(runtime):
    marker = runtime.tmp_path / "attempts.txt"
    pool = runtime.pool(
        f"""
        with open({str(marker)!r}, "a") as f:
            f.write("imported\\n")
        import not_a_module_anywhere
        """,
        max_instances=2,
    )
    started = time.monotonic()
    outcomes = await asyncio.gather(*(pool.run(runtime.assign()) for _ in range(4)))
    spawned = marker.read_text().count("imported")
    assert spawned <= 2  # a burst spawns at most max_instances; then the failure is cached
    outcomes += [await pool.run(runtime.assign()) for _ in range(3)]
    assert time.monotonic() - started < 10
    for run in outcomes:
        assert isinstance(run.outcome, Raised)
        assert run.outcome.type == "HandlerImportError"
        assert run.outcome.retryable is False
        assert "ModuleNotFoundError: No module named 'not_a_module_anywhere'" in run.outcome.message
    assert marker.read_text().count("imported") == spawned
    await runtime.until(lambda: pool.instances == (), within_s=3)  # they exit by themselves


async def test_a_missing_handler_function_is_an_import_error(runtime):
    pool = runtime.pool("def other(event, context):\n    return 1\n")
    outcome = (await pool.run(runtime.assign())).outcome
    assert isinstance(outcome, Raised) and outcome.type == "HandlerImportError"
    assert "AttributeError" in outcome.message


async def test_memory_over_memory_mb_is_out_of_memory(runtime):
    pool = runtime.pool(
        """
        import time

        def handler(event, context):
            hog = b"x" * (300 << 20)
            time.sleep(30)
            return len(hog)
        """,
        memory_mb=128,
    )
    outcome = (await pool.run(runtime.assign(timeout_s=20))).outcome
    assert isinstance(outcome, OutOfMemory)
    assert outcome.memory_mb == 128
    assert outcome.peak_mb > 128
