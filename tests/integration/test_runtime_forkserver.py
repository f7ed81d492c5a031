"""Instances forked from a function's fork server, on real processes: they behave like spawned
ones (environment, cwd, limits, signals, deadlines, memory, exits, import errors, both runtimes),
die with the node, and survive their fork server, which is reported and no longer used."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.outcomes import (
    InstanceExited,
    OutOfMemory,
    Raised,
    Stopped,
    Succeeded,
    TimedOut,
)
from asyncfn.runtime.forkserver import ForkServer
from asyncfn.runtime.instance import Instance
from asyncfn.runtime.process import InstanceLimits, resolve_user
from tests.integration.conftest import RuntimeKit
from tests.integration.test_runtime_limits import (  # noqa: F401 - fixtures
    NOBODY,
    WHO,
    as_root_with_nobody,
    nobody_python,
    shared_dir,
)

pytestmark = pytest.mark.timeout(60)

PY = sys.executable

PROBE = """
    import os, resource, time

    LOADED_IN = os.getpid()

    def handler(event, context):
        if event == b"exit":
            os._exit(3)
        if event:
            time.sleep(float(event))
        return {
            "pid": os.getpid(),
            "pgid": os.getpgid(0),
            "loaded_in": LOADED_IN,
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
            "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            "stdin": len(os.read(0, 1)),
        }
"""


class Kit:
    """Fork servers and instances over handler code in tmp_path, all stopped at the end."""

    def __init__(self, runtime: RuntimeKit) -> None:
        self.runtime = runtime
        self.servers: list[ForkServer] = []
        self.instances: list[Instance] = []

    def spec(self, **spec: Any) -> FunctionSpec:
        spec.setdefault("name", "fn")
        if "command" in spec:
            spec["runtime"] = "command"
            spec["command"] = tuple(spec["command"])
        else:
            spec.setdefault("handler", "handler:handler")
        return FunctionSpec(**spec)

    def code_dir(self, spec: FunctionSpec, source: str | None) -> Path:
        if source is not None:
            return self.runtime.code(source)
        scratch = self.runtime.tmp_path / "scratch"
        scratch.mkdir(exist_ok=True)
        return scratch

    async def server(
        self,
        spec: FunctionSpec,
        source: str | None = None,
        *,
        base_env: dict[str, str] | None = None,
        limits: InstanceLimits | None = None,
    ) -> ForkServer:
        folder = self.code_dir(spec, source)
        server = ForkServer(
            spec,
            cwd=folder,
            code_dir=folder if source is not None else None,
            base_env=base_env if base_env is not None else dict(os.environ),
            limits=limits,
        )
        self.servers.append(server)
        await server.start()
        return server

    def instance(
        self,
        spec: FunctionSpec,
        forker: ForkServer | None,
        *,
        base_env: dict[str, str] | None = None,
        limits: InstanceLimits | None = None,
    ) -> Instance:
        folder = self.code_dir(spec, None) if spec.runtime == "command" else self.folder
        instance = Instance(
            spec,
            self.runtime.recorder,
            cwd=folder,
            code_dir=folder if spec.runtime == "python" else None,
            base_env=base_env if base_env is not None else dict(os.environ),
            limits=limits,
            forker=forker,
        )
        self.instances.append(instance)
        instance.start()
        return instance

    @property
    def folder(self) -> Path:
        return self.runtime.tmp_path / "code"

    async def close(self) -> None:
        for instance in self.instances:
            instance.kill()
        await asyncio.gather(*(i.close(0.5) for i in self.instances))
        await asyncio.gather(*(s.stop() for s in self.servers))


@pytest.fixture
async def kit(runtime: RuntimeKit) -> AsyncIterator[Kit]:
    k = Kit(runtime)
    yield k
    await k.close()


async def run(kit: Kit, instance: Instance, payload: bytes = b"", timeout_s: float = 20.0) -> Any:
    return await instance.run(kit.runtime.assign(payload, timeout_s=timeout_s))


async def test_a_forked_instance_sees_what_a_spawned_one_sees(kit):
    spec = kit.spec(env={"GREETING": "hello"})
    base_env = {**os.environ, "NODE_SECRET": "not for instances"}
    limits = InstanceLimits(max_open_files=321)
    server = await kit.server(spec, PROBE, base_env=base_env, limits=limits)
    assert server.alive and server.failure is None and server.import_error is None
    forked = [kit.instance(spec, server, base_env=base_env, limits=limits) for _ in range(2)]
    spawned = kit.instance(spec, None, base_env=base_env, limits=limits)
    seen = {}
    for instance in (*forked, spawned):
        assert await instance.wait_ready()
        assert instance.cold_start_ms is not None and instance.cold_start_ms > 0
        outcome = await run(kit, instance)
        assert isinstance(outcome, Succeeded), outcome
        seen[instance] = outcome.result
    assert [i.forked for i in (*forked, spawned)] == [True, True, False]
    for instance in forked:
        result = seen[instance]
        assert result["pid"] == instance.pid == result["pgid"] != server.pid
        assert result["loaded_in"] == server.pid  # imported once, in the server
        assert result["env"] == seen[spawned]["env"]
        assert result["cwd"] == seen[spawned]["cwd"] == str(kit.folder)
        assert result["core"] == [0, 0]
        assert result["nofile"] == [321, 321]
        assert result["stdin"] == 0  # /dev/null
    assert seen[spawned]["loaded_in"] == spawned.pid
    assert seen[spawned]["env"]["GREETING"] == "hello"
    assert "NODE_SECRET" not in seen[spawned]["env"]


async def test_a_forked_instance_reuses_its_process_and_exits_cleanly_on_close(kit):
    spec = kit.spec()
    server = await kit.server(spec, PROBE)
    instance = kit.instance(spec, server)
    first = await run(kit, instance)
    second = await run(kit, instance)
    assert first.result["pid"] == second.result["pid"] == instance.pid
    await instance.close()
    assert instance.state == "exited"
    assert instance.returncode == 0


async def test_handler_exit_code_is_reported_through_the_server(kit):
    spec = kit.spec()
    server = await kit.server(spec, PROBE)
    instance = kit.instance(spec, server)
    outcome = await run(kit, instance, b"exit")
    assert isinstance(outcome, InstanceExited)
    assert (outcome.exit_code, outcome.signal) == (3, None)
    assert instance.returncode == 3


async def test_kill_timeout_and_stop_signal_the_forked_group(kit):
    spec = kit.spec(timeout_s=1)
    server = await kit.server(spec, PROBE)
    killed = kit.instance(spec, server)
    running = asyncio.ensure_future(run(kit, killed, b"30"))
    await kit.runtime.until(lambda: killed.load and kit.runtime.recorder.started)
    killed.kill()
    outcome = await running
    assert isinstance(outcome, InstanceExited) and outcome.signal == signal.SIGKILL

    late = kit.instance(spec, server)
    outcome = await run(kit, late, b"30", timeout_s=0.5)
    assert isinstance(outcome, TimedOut)
    assert await kit.runtime.wait_gone(late.pid)

    stopped = kit.instance(spec, server)
    assert await stopped.wait_ready()
    a = kit.runtime.assign(b"30")
    running = asyncio.ensure_future(stopped.run(a))
    await kit.runtime.until(lambda: any(row == a.row for row, _, _ in kit.runtime.recorder.started))
    assert await stopped.stop_attempt(a.row, grace_s=5.0)
    assert isinstance(await running, Stopped)
    assert stopped.returncode == -signal.SIGTERM


async def test_suspend_and_resume_stop_and_continue_a_forked_instance(kit):
    spec = kit.spec()
    server = await kit.server(spec, PROBE)
    instance = kit.instance(spec, server)
    assert await instance.wait_ready()
    running = asyncio.ensure_future(run(kit, instance, b"0.5"))
    await kit.runtime.until(lambda: kit.runtime.recorder.started)
    instance.suspend()
    await kit.runtime.until(lambda: kit.runtime.state_of(instance.pid) == "T")
    assert not running.done()
    instance.resume()
    await kit.runtime.until(lambda: kit.runtime.state_of(instance.pid) != "T")
    outcome = await running
    assert isinstance(outcome, Succeeded)


async def test_memory_over_memory_mb_is_out_of_memory(kit):
    source = """
        import time

        def handler(event, context):
            hog = b"x" * (300 << 20)
            time.sleep(30)
            return len(hog)
    """
    spec = kit.spec(memory_mb=128)
    server = await kit.server(spec, source)
    outcome = await run(kit, kit.instance(spec, server))
    assert isinstance(outcome, OutOfMemory)
    assert outcome.memory_mb == 128


async def test_an_import_error_fails_forked_attempts_as_it_fails_spawned_ones(kit):
    spec = kit.spec()
    server = await kit.server(spec, "import no_such_module_here\n")
    assert server.alive
    assert server.import_error is not None
    assert server.import_error["type"] == "ModuleNotFoundError"
    outcomes = []
    for forker in (server, None):
        instance = kit.instance(spec, forker)
        assert not await instance.wait_ready()
        outcomes.append(await run(kit, instance))
    forked, spawned = outcomes
    assert isinstance(forked, Raised) and forked.type == "HandlerImportError"
    assert (forked.type, forked.message, forked.retryable) == (
        spawned.type,
        spawned.message,
        spawned.retryable,
    )


async def test_an_async_handler_gets_its_loop_in_the_forked_instance(kit):
    source = """
        import asyncio, os

        async def handler(event, context):
            await asyncio.sleep(0.01)
            return {"pid": os.getpid(), "loop": id(asyncio.get_running_loop())}
    """
    spec = kit.spec(instance_concurrency=4)
    server = await kit.server(spec, source)
    instance = kit.instance(spec, server)
    outcomes = await asyncio.gather(*(run(kit, instance) for _ in range(4)))
    assert all(isinstance(o, Succeeded) for o in outcomes)
    assert {o.result["pid"] for o in outcomes} == {instance.pid}
    assert len({o.result["loop"] for o in outcomes}) == 1


async def test_a_command_function_runs_from_its_fork_server(kit):
    spec = kit.spec(command=[PY, "-c", "import os, sys; print(len(sys.stdin.read()), os.getcwd())"])
    server = await kit.server(spec)
    instance = kit.instance(spec, server)
    outcome = await run(kit, instance, b"abcd")
    assert isinstance(outcome, Succeeded), outcome
    assert instance.forked
    assert outcome.result.strip() == f"4 {kit.runtime.tmp_path / 'scratch'}"


async def test_a_killed_fork_server_is_reported_and_its_instances_live_on(kit, caplog):
    spec = kit.spec()
    server = await kit.server(spec, PROBE)
    survivor = kit.instance(spec, server)
    assert await survivor.wait_ready()
    running = asyncio.ensure_future(run(kit, survivor, b"0.5"))
    await kit.runtime.until(lambda: kit.runtime.recorder.started)
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    await kit.runtime.until(lambda: server.failure is not None)
    assert not server.alive
    assert "signal 9" in (server.failure or "")
    assert [r for r in caplog.records if r.levelname == "ERROR" and "fork server" in r.message]
    outcome = await running
    assert isinstance(outcome, Succeeded)
    assert outcome.result["loaded_in"] != survivor.pid  # it was forked
    fallback = kit.instance(spec, server)
    assert isinstance(await run(kit, fallback), Succeeded)
    assert not fallback.forked
    await survivor.close()
    assert survivor.state == "exited"
    assert survivor.returncode is None  # nobody is left to say how it ended


async def test_instances_outlive_a_stopped_fork_server(kit):
    spec = kit.spec()
    server = await kit.server(spec, PROBE)
    instance = kit.instance(spec, server)
    assert await instance.wait_ready()
    await server.stop()
    assert not server.alive and server.failure is None
    assert isinstance(await run(kit, instance), Succeeded)
    assert not kit.instance(spec, server).forked


@as_root_with_nobody
async def test_a_fork_server_and_its_instances_run_as_the_instance_user(
    kit: Kit,
    shared_dir: Path,  # noqa: F811
    nobody_python: str,  # noqa: F811
) -> None:
    assert NOBODY is not None
    code = shared_dir / "code"
    code.mkdir(mode=0o755)
    (code / "handler.py").write_text(textwrap.dedent(WHO))
    (code / "handler.py").chmod(0o644)
    run_as = resolve_user("nobody")
    limits = InstanceLimits(run_as=run_as)
    spec = kit.spec(env={"PYTHONPATH": nobody_python} if nobody_python else {})
    server = ForkServer(spec, cwd=code, code_dir=code, base_env=dict(os.environ), limits=limits)
    kit.servers.append(server)
    await server.start()
    assert server.alive, server.failure
    instance = Instance(
        spec, kit.runtime.recorder, cwd=code, code_dir=code, base_env=os.environ, forker=server
    )
    kit.instances.append(instance)
    instance.start()
    outcome = await run(kit, instance)
    assert isinstance(outcome, Succeeded), outcome
    assert instance.forked
    assert outcome.result["uid"] == NOBODY.pw_uid
    assert outcome.result["gid"] == NOBODY.pw_gid
    assert outcome.result["groups"] == sorted(set(run_as.groups))
    assert outcome.result["home"] == NOBODY.pw_dir


async def test_a_fork_server_that_cannot_start_is_reported_not_raised(kit, tmp_path):
    spec = kit.spec()
    server = ForkServer(spec, cwd=tmp_path / "missing", base_env=dict(os.environ))
    kit.servers.append(server)
    await server.start()
    assert not server.alive
    assert server.failure is not None and "cannot start" in server.failure


NODE = """
    import asyncio, os, sys, time
    from pathlib import Path
    from asyncfn.domain.models import FunctionSpec
    from asyncfn.runtime.forkserver import ForkServer
    from asyncfn.runtime.instance import Assignment, Instance

    class Quiet:
        def on_started(self, *args): pass
        def on_log(self, *args): pass
        def on_progress(self, *args): pass
        def on_checkpoint(self, *args): pass

    async def main():
        code = Path(sys.argv[1])
        spec = FunctionSpec(name="fn", handler="handler:handler", timeout_s=120)
        server = ForkServer(spec, cwd=code, code_dir=code, base_env=os.environ)
        await server.start()
        instance = Instance(spec, Quiet(), cwd=code, code_dir=code, base_env=os.environ,
                            forker=server)
        instance.start()
        a = Assignment(1, "t", "fn", 1, b"", time.time() + 120)
        run = asyncio.ensure_future(instance.run(a))
        await instance.wait_ready()
        print(server.pid, instance.pid, flush=True)
        await run

    asyncio.run(main())
"""


def test_forked_instances_and_their_server_die_with_the_node(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "handler.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(120)\n"
    )
    script = tmp_path / "node.py"
    script.write_text(textwrap.dedent(NODE))
    node = subprocess.Popen([PY, str(script), str(code)], stdout=subprocess.PIPE)
    try:
        assert node.stdout is not None
        server_pid, instance_pid = map(int, node.stdout.readline().split())
        assert RuntimeKit.gone(instance_pid) is False
        node.send_signal(signal.SIGKILL)
        assert RuntimeKit.wait_until_gone(instance_pid)
        assert RuntimeKit.wait_until_gone(server_pid)
    finally:
        node.kill()
        node.wait()
        if node.stdout is not None:
            node.stdout.close()


# -- pools with a fork server ---------------------------------------------------------------

POOLED = """
    import os, time

    LOADED_IN = os.getpid()

    def handler(event, context):
        time.sleep(float(event or 0))
        return {"pid": os.getpid(), "loaded_in": LOADED_IN}
"""


async def burst(runtime: RuntimeKit, pool: Any, *payloads: bytes) -> list[Any]:
    runs = [pool.run(runtime.assign(p)) for p in payloads]
    return [r.outcome for r in await asyncio.gather(*runs)]


async def test_a_pool_forks_its_instances_and_stop_leaves_no_process(runtime):
    pool = runtime.pool(POOLED, fork_server=True, max_instances=3)
    await pool.start()
    assert pool.stats().fork_server == "running"
    outcomes = await burst(runtime, pool, b"0.3", b"0.3", b"0.3")
    assert all(isinstance(o, Succeeded) for o in outcomes), outcomes
    (server_pid,) = {o.result["loaded_in"] for o in outcomes}  # the handler loaded once
    pids = {o.result["pid"] for o in outcomes}
    assert len(pids) == 3 and server_pid not in pids
    assert len(pool.instances) == 3 and all(i.forked for i in pool.instances)
    assert len(pool.stats().cold_starts_ms) == 3
    assert not runtime.gone(server_pid)

    await pool.stop(grace_s=0.5)
    assert pool.stats().fork_server == "off"
    for pid in (*pids, server_pid):
        assert await runtime.wait_gone(pid), pid
    assert runtime.children_of(os.getpid()) == []
    assert runtime.children_of(server_pid) == []


async def test_a_pool_spawns_until_started_then_forks(runtime):
    pool = runtime.pool(POOLED, fork_server=True, max_instances=2)
    first = await pool.run(runtime.assign())
    assert isinstance(first.outcome, Succeeded)
    assert first.outcome.result["loaded_in"] == first.outcome.result["pid"]  # spawned
    assert pool.stats().fork_server == "off" and not pool.instances[0].forked

    await pool.start()
    assert pool.stats().fork_server == "running"
    outcomes = await burst(runtime, pool, b"0.3", b"0.3")  # the second needs a new instance
    forked = [i for i in pool.instances if i.forked]
    assert len(forked) == 1 and forked[0].pid in {o.result["pid"] for o in outcomes}


async def test_a_pool_whose_fork_server_was_killed_spawns_and_says_so(runtime, caplog):
    pool = runtime.pool(POOLED, fork_server=True, max_instances=3)
    await pool.start()
    (survivor,) = await burst(runtime, pool, b"0")
    server_pid = survivor.result["loaded_in"]
    assert survivor.result["pid"] != server_pid
    os.kill(server_pid, signal.SIGKILL)
    await runtime.until(lambda: pool.stats().fork_server != "running")
    assert pool.stats().fork_server.startswith("failed: ")
    assert "signal 9" in pool.stats().fork_server
    assert [r for r in caplog.records if r.levelname == "ERROR" and "fork server" in r.message]

    outcomes = await burst(runtime, pool, b"0.3", b"0.3", b"0.3")
    assert all(isinstance(o, Succeeded) for o in outcomes), outcomes
    assert survivor.result["pid"] in {o.result["pid"] for o in outcomes}  # it lived on
    spawned = [o.result for o in outcomes if o.result["pid"] != survivor.result["pid"]]
    assert len(spawned) == 2 and all(r["loaded_in"] == r["pid"] for r in spawned)
    assert sum(not i.forked for i in pool.instances) == 2

    pids = [i.pid for i in pool.instances]
    await pool.stop(grace_s=0.5)
    assert pool.stats().fork_server.startswith("failed: ")
    for pid in pids:
        assert pid is not None and await runtime.wait_gone(pid)
    assert runtime.children_of(os.getpid()) == []


async def test_a_command_pool_forks_from_a_server_in_its_scratch_dir(runtime):
    script = "import os, sys; print(len(sys.stdin.read()), os.getcwd())"
    pool = runtime.pool(command=[PY, "-c", script], fork_server=True)
    await pool.start()  # the scratch dir exists before the server starts in it
    assert pool.stats().fork_server == "running"
    outcome = (await pool.run(runtime.assign(b"abc"))).outcome
    assert isinstance(outcome, Succeeded), outcome
    assert outcome.result.strip() == f"3 {runtime.tmp_path / 'scratch'}"
    assert pool.instances[0].forked


async def test_a_handler_import_error_is_not_a_fork_server_failure(runtime):
    pool = runtime.pool("import no_such_module_here\n", fork_server=True)
    await pool.start()
    assert pool.stats().fork_server == "running"
    outcome = (await pool.run(runtime.assign())).outcome
    assert isinstance(outcome, Raised) and outcome.type == "HandlerImportError"
    assert not outcome.retryable
    assert pool.stats().fork_server == "running"
