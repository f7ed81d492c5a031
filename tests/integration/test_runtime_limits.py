"""Instance hardening on real processes: resource limits set before the handler runs (and not
raisable by it), and instances run as another user when the node is root."""

from __future__ import annotations

import os
import pwd
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncfn.domain.models import FunctionSpec
from asyncfn.domain.outcomes import Succeeded
from asyncfn.runtime.pool import InstancePool
from asyncfn.runtime.process import (
    AS_HEADROOM_MB,
    AS_PER_MEMORY_MB,
    InstanceLimits,
    resolve_user,
)
from asyncfn.settings import Settings
from tests.integration.conftest import RuntimeKit

LIMITS = """
    import resource

    def handler(event, context):
        names = {"core": resource.RLIMIT_CORE, "nofile": resource.RLIMIT_NOFILE,
                 "as": resource.RLIMIT_AS}
        limits = {name: list(resource.getrlimit(which)) for name, which in names.items()}
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard + 1, hard + 1))
            limits["raised"] = True
        except (ValueError, OSError):
            limits["raised"] = False
        return limits
"""

WHO = """
    import os

    def handler(event, context):
        return {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
                "home": os.environ.get("HOME"), "cwd": os.getcwd()}
"""


def limited_pool(
    kit: RuntimeKit, limits: InstanceLimits, code_dir: Path, scratch: Path, **spec: Any
) -> InstancePool:
    """A pool over `code_dir` (or a command spec) whose instances get `limits`."""
    spec.setdefault("name", "fn")
    if "command" not in spec:
        spec.setdefault("handler", "handler:handler")
    pool = InstancePool(
        FunctionSpec(**spec),
        code_dir if "command" not in spec else None,
        kit.recorder,
        scratch_dir=scratch,
        base_env=os.environ,
        limits=limits,
    )
    kit.pools.append(pool)
    return pool


async def limits_seen(kit: RuntimeKit, limits: InstanceLimits, memory_mb: int = 512) -> Any:
    code = kit.code(LIMITS)
    pool = limited_pool(kit, limits, code, kit.tmp_path / "scratch", memory_mb=memory_mb)
    outcome = (await pool.run(kit.assign())).outcome
    assert isinstance(outcome, Succeeded), outcome
    return outcome.result


def capped(wanted: int, which: int) -> int:
    hard = resource.getrlimit(which)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


async def test_instances_get_no_core_dumps_and_the_default_open_files_limit(runtime):
    seen = await limits_seen(runtime, InstanceLimits())
    assert seen["core"] == [0, 0]
    nofile = capped(Settings().instance_max_open_files, resource.RLIMIT_NOFILE)
    assert seen["nofile"] == [nofile, nofile]
    assert seen["as"] == list(resource.getrlimit(resource.RLIMIT_AS))  # off by default
    assert seen["raised"] is False  # the hard limit was lowered too


async def test_the_open_files_limit_follows_the_setting_and_caps_at_the_hard_limit(runtime):
    seen = await limits_seen(runtime, InstanceLimits(max_open_files=100))
    assert seen["nofile"] == [100, 100]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        above = await limits_seen(runtime, InstanceLimits(max_open_files=hard + 1000))
        assert above["nofile"] == [hard, hard]


async def test_the_address_space_cap_is_a_multiple_of_memory_mb_when_enabled(runtime):
    seen = await limits_seen(runtime, InstanceLimits(rlimit_as=True), memory_mb=256)
    wanted = capped((256 * AS_PER_MEMORY_MB + AS_HEADROOM_MB) << 20, resource.RLIMIT_AS)
    assert seen["as"] == [wanted, wanted]


async def test_a_command_runs_under_its_instance_limits(runtime):
    script = "import resource; print(list(resource.getrlimit(resource.RLIMIT_NOFILE)))"
    pool = limited_pool(
        runtime,
        InstanceLimits(max_open_files=64),
        runtime.tmp_path,
        runtime.tmp_path / "scratch",
        runtime="command",
        command=(sys.executable, "-c", script),
    )
    outcome = (await pool.run(runtime.assign())).outcome
    assert isinstance(outcome, Succeeded), outcome
    assert outcome.result == [64, 64]


def test_an_unknown_instance_user_is_refused_at_start() -> None:
    with pytest.raises(LookupError, match="no-such-user-x"):
        resolve_user("no-such-user-x")
    with pytest.raises(ValueError, match="no such user"):
        Settings(instance_user="no-such-user-x")


def _nobody() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


NOBODY = _nobody()
as_root_with_nobody = pytest.mark.skipif(
    os.geteuid() != 0 or NOBODY is None, reason="running as another user needs root and 'nobody'"
)


def _runs_as_nobody(python: str, pythonpath: str) -> bool:
    assert NOBODY is not None
    try:
        probe = subprocess.run(
            [python, "-c", "import orjson"],
            env={"PYTHONPATH": pythonpath},
            cwd="/",
            user=NOBODY.pw_uid,
            group=NOBODY.pw_gid,
            extra_groups=[],
            capture_output=True,
            timeout=30,
        )
    except OSError:
        return False
    return probe.returncode == 0


@pytest.fixture
def nobody_python(monkeypatch: pytest.MonkeyPatch) -> str:
    """The PYTHONPATH instances running as 'nobody' need. The node's interpreter when 'nobody'
    may run it; else (it lives in root's home, say) the system's python of the same version,
    given this environment's site-packages. Skips when neither works."""
    site = sysconfig.get_paths()["purelib"]
    if _runs_as_nobody(sys.executable, ""):
        return ""
    system = shutil.which(
        f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin"
    )
    if system is None or not _runs_as_nobody(system, site):
        pytest.skip("'nobody' can run neither this interpreter nor a system one")
    monkeypatch.setattr(sys, "executable", system)
    return site


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder any user can read (pytest's tmp_path is private to its owner)."""
    with tempfile.TemporaryDirectory(prefix="asyncfn-runas-") as name:
        folder = Path(name)
        folder.chmod(0o755)
        yield folder


@as_root_with_nobody
async def test_instances_run_as_the_instance_user(
    runtime: RuntimeKit, shared_dir: Path, nobody_python: str
) -> None:
    assert NOBODY is not None
    code = shared_dir / "code"
    code.mkdir(mode=0o755)
    (code / "handler.py").write_text(textwrap.dedent(WHO))
    (code / "handler.py").chmod(0o644)
    run_as = resolve_user("nobody")
    pool = limited_pool(
        runtime,
        InstanceLimits(run_as=run_as),
        code,
        shared_dir / "scratch",
        env={"PYTHONPATH": nobody_python} if nobody_python else {},
    )
    outcome = (await pool.run(runtime.assign())).outcome
    assert isinstance(outcome, Succeeded), outcome
    assert outcome.result["uid"] == NOBODY.pw_uid
    assert outcome.result["gid"] == NOBODY.pw_gid
    assert outcome.result["groups"] == sorted(set(run_as.groups))
    assert outcome.result["home"] == NOBODY.pw_dir


@as_root_with_nobody
async def test_the_scratch_folder_belongs_to_the_instance_user(
    runtime: RuntimeKit, shared_dir: Path, nobody_python: str
) -> None:
    assert NOBODY is not None
    scratch = shared_dir / "scratch"
    script = "import os; open('made-here', 'w').close(); print(os.getuid())"
    pool = limited_pool(
        runtime,
        InstanceLimits(run_as=resolve_user(str(NOBODY.pw_uid))),
        shared_dir,
        scratch,
        runtime="command",
        command=(sys.executable, "-c", script),
        env={"PYTHONPATH": nobody_python} if nobody_python else {},
    )
    outcome = (await pool.run(runtime.assign())).outcome
    assert isinstance(outcome, Succeeded), outcome
    assert outcome.result == NOBODY.pw_uid
    assert scratch.stat().st_uid == NOBODY.pw_uid
    assert (scratch / "made-here").stat().st_uid == NOBODY.pw_uid
