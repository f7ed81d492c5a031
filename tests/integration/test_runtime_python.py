"""The python runtime on real instances: results, async handlers, output, reuse, context."""

from __future__ import annotations

import asyncio
import time

from asyncfn.domain.outcomes import Raised, Succeeded

RETURNS = """
    import json

    CASES = {
        "dict": {"a": 1, "b": [1, 2]},
        "list": [1, "two", None],
        "str": "hello",
        "int": 42,
        "float": 2.5,
        "bool": True,
        "none": None,
        "json-bytes": b'{"x": [1, 2]}',
        "text-bytes": "héllo, not json".encode(),
        "binary-bytes": bytes([0xFF, 0x00, 0xFE]),
        "set": {1, 2},
    }

    def handler(event, context):
        return CASES[event.decode()]
"""


async def test_sync_handler_result_encodes_each_return_type(runtime):
    pool = runtime.pool(RETURNS)
    expected = {
        "dict": {"a": 1, "b": [1, 2]},
        "list": [1, "two", None],
        "str": "hello",
        "int": 42,
        "float": 2.5,
        "bool": True,
        "none": None,
        "json-bytes": {"x": [1, 2]},
        "text-bytes": "héllo, not json",
        "binary-bytes": {"base64": "/wD+"},
    }
    for case, result in expected.items():
        run = await pool.run(runtime.assign(case.encode()))
        assert run.outcome == Succeeded(result, run.outcome.duration_ms, run.outcome.resources)
        assert run.outcome.resources.max_rss_mb > 1
    bad = (await pool.run(runtime.assign(b"set"))).outcome
    assert isinstance(bad, Raised)
    assert bad.type == "TypeError"
    assert "JSON" in bad.message


async def test_async_handler_runs_on_one_loop_kept_for_the_instance(runtime):
    pool = runtime.pool(
        """
        import asyncio, os

        async def handler(event, context):
            await asyncio.sleep(0.01)
            return {"loop": id(asyncio.get_running_loop()), "pid": os.getpid()}
        """
    )
    first = (await pool.run(runtime.assign())).outcome
    second = (await pool.run(runtime.assign())).outcome
    assert isinstance(first, Succeeded) and isinstance(second, Succeeded)
    assert first.result == second.result


async def test_stdout_stderr_and_logger_lines_reach_the_listener_for_their_row(runtime):
    pool = runtime.pool(
        """
        import sys

        def handler(event, context):
            name = event.decode()
            print(f"out {name}")
            print(f"err {name}", file=sys.stderr)
            context.logger.info("log %s", name)
            context.logger.debug("not shown at INFO")
            sys.stdout.write(f"unterminated {name}")
            return name
        """
    )
    first, second = runtime.assign(b"one"), runtime.assign(b"two")
    assert (await pool.run(first)).outcome.result == "one"
    assert (await pool.run(second)).outcome.result == "two"
    rec = runtime.recorder
    for a, name in ((first, "one"), (second, "two")):
        assert rec.lines(a.row, "stdout") == [f"out {name}", f"unterminated {name}"]
        assert rec.lines(a.row, "stderr") == [f"err {name}"]
        assert rec.lines(a.row, "log") == [f"INFO log {name}"]
    assert [row for row, _, _ in rec.started] == [first.row, second.row]


async def test_an_instance_is_reused_and_imports_the_handler_once(runtime):
    marker = runtime.tmp_path / "imports.txt"
    pool = runtime.pool(
        f"""
        import os
        with open({str(marker)!r}, "a") as f:
            f.write(f"{{os.getpid()}}\\n")

        def handler(event, context):
            return os.getpid()
        """
    )
    runs = [await pool.run(runtime.assign()) for _ in range(5)]
    pids = {run.outcome.result for run in runs}
    assert len(pids) == 1
    assert {run.instance_id for run in runs} == {runs[0].instance_id}
    assert marker.read_text().split() == [str(pids.pop())]


async def test_context_progress_checkpoint_and_last_checkpoint_reach_the_listener(runtime):
    pool = runtime.pool(
        """
        def handler(event, context):
            seen = context.last_checkpoint
            context.progress(0.5, "half")
            context.checkpoint({"step": seen["step"] + 1})
            errors = []
            for bad in (1.5, -0.1, float("nan"), "x"):
                try:
                    context.progress(bad)
                except (ValueError, TypeError) as exc:
                    errors.append(type(exc).__name__)
            try:
                context.checkpoint({1, 2})
            except TypeError:
                errors.append("checkpoint")
            context.progress(1)
            return {
                "seen": seen,
                "now": context.last_checkpoint,
                "errors": errors,
                "task_id": context.task_id,
                "function": context.function,
                "attempt": context.attempt,
                "remaining_ok": 0 < context.remaining_s() <= 30,
                "deadline": context.deadline,
            }
        """
    )
    a = runtime.assign(checkpoint={"step": 3}, attempt=2)
    result = (await pool.run(a)).outcome.result
    assert result == {
        "seen": {"step": 3},
        "now": {"step": 4},
        "errors": ["ValueError", "ValueError", "ValueError", "TypeError", "checkpoint"],
        "task_id": a.task_id,
        "function": "fn",
        "attempt": 2,
        "remaining_ok": True,
        "deadline": a.deadline,
    }
    rec = runtime.recorder
    assert rec.progress == [(a.row, 2, 0.5, "half"), (a.row, 2, 1.0, None)]
    assert rec.checkpoints == [(a.row, 2, {"step": 4})]


SLEEPERS = {
    "sync": (
        "import os, time\n\ndef handler(event, context):\n"
        "    time.sleep(float(event or 0))\n    return os.getpid()\n"
    ),
    "async": (
        "import asyncio, os\n\nasync def handler(event, context):\n"
        "    await asyncio.sleep(float(event or 0))\n    return os.getpid()\n"
    ),
}


async def test_instance_concurrency_two_runs_two_tasks_at_once_on_one_instance(runtime):
    for source in SLEEPERS.values():
        pool = runtime.pool(source, instance_concurrency=2, max_instances=1)
        assert pool.capacity == 2
        await pool.start()  # min_instances=0: nothing to warm
        await pool.run(runtime.assign())  # warm
        started = time.monotonic()
        runs = await asyncio.gather(pool.run(runtime.assign(b"1")), pool.run(runtime.assign(b"1")))
        assert time.monotonic() - started < 1.8
        assert len({run.outcome.result for run in runs}) == 1
        assert len({run.instance_id for run in runs}) == 1


async def test_a_line_longer_than_64_kib_is_split(runtime):
    pool = runtime.pool("def handler(event, context):\n    print('x' * 70_000)\n")
    a = runtime.assign()
    await pool.run(a)
    assert [len(line) for line in runtime.recorder.lines(a.row, "stdout")] == [65_536, 4_464]
