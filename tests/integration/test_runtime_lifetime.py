"""Instances never outlive the node that started them, and pools work under uvloop too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import uvloop

from asyncfn.domain.models import FunctionSpec
from asyncfn.runtime.pool import Assignment, InstancePool

NODE = """
    import asyncio, os, sys, time
    from pathlib import Path
    from asyncfn.domain.models import FunctionSpec
    from asyncfn.runtime.pool import Assignment, InstancePool

    class Quiet:
        def on_started(self, *args): pass
        def on_log(self, *args): pass
        def on_progress(self, *args): pass
        def on_checkpoint(self, *args): pass

    async def main():
        code = Path(sys.argv[1])
        spec = FunctionSpec(name="fn", handler="handler:handler", timeout_s=120)
        pool = InstancePool(spec, code, Quiet(), scratch_dir=code, base_env=os.environ)
        run = asyncio.ensure_future(pool.run(Assignment(1, "t", "fn", 1, b"", time.time() + 120)))
        while not pool.instances or pool.instances[0].state != "ready":
            await asyncio.sleep(0.01)
        print(pool.instances[0].pid, flush=True)
        await run

    asyncio.run(main())
"""


def test_instances_die_with_their_parent(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "handler.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(120)\n"
    )
    script = tmp_path / "node.py"
    script.write_text(textwrap.dedent(NODE))
    node = subprocess.Popen([sys.executable, str(script), str(code)], stdout=subprocess.PIPE)
    try:
        assert node.stdout is not None
        instance_pid = int(node.stdout.readline())
        assert process_alive(instance_pid)
        node.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while process_alive(instance_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not process_alive(instance_pid)
    finally:
        node.kill()
        node.wait()
        if node.stdout is not None:
            node.stdout.close()


class Quiet:
    def on_started(self, row: int, attempt: int, instance_id: str, at: float) -> None:
        pass

    def on_log(self, row: int, attempt: int, stream: str, line: str, at: float) -> None:
        pass

    def on_progress(self, row: int, attempt: int, fraction: float, message: str | None) -> None:
        pass

    def on_checkpoint(self, row: int, attempt: int, checkpoint: object) -> None:
        pass


def test_a_pool_runs_tasks_and_enforces_deadlines_under_uvloop(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "handler.py").write_text(
        "import os, time\n\ndef handler(event, context):\n"
        "    time.sleep(float(event or 0))\n    return os.getpid()\n"
    )

    async def scenario() -> None:
        spec = FunctionSpec(name="fn", handler="handler:handler", timeout_s=1)
        pool = InstancePool(spec, code, Quiet(), scratch_dir=tmp_path, base_env=os.environ)
        try:
            first = await pool.run(Assignment(1, "a", "fn", 1, b"", time.time() + 10))
            second = await pool.run(Assignment(2, "b", "fn", 1, b"", time.time() + 10))
            assert first.outcome.result == second.outcome.result
            slow = await pool.run(Assignment(3, "c", "fn", 1, b"30", time.time() + 0.5))
            assert type(slow.outcome).__name__ == "TimedOut"
        finally:
            await pool.stop()
        assert pool.instances == ()

    uvloop.run(scenario())
    assert [pid for pid in os.listdir("/proc") if pid.isdigit() and _child_of_us(pid)] == []


def _stat(pid: int | str) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return ["X", "0"]


def process_alive(pid: int) -> bool:
    return _stat(pid)[0] not in ("Z", "X")


def _child_of_us(pid: str) -> bool:
    fields = _stat(pid)
    return int(fields[1]) == os.getpid() and fields[0] not in ("Z", "X")
