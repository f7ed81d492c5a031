"""The `command` runtime inside an instance: the function's argv run per task in the instance's
folder, payload on stdin, result from stdout, stderr lines to the task's log."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
from collections import deque
from collections.abc import Callable
from typing import Any

from asyncfn.runtime import lifeline, protocol
from asyncfn.runtime.logs import LineSplitter

STDERR_TAIL_LINES = 20
_CHUNK = 1 << 16
_NOT_IN_NAME = re.compile(r"[^A-Z0-9_]")


def command_env(environ: dict[str, str], asyncfn_root: str) -> dict[str, str]:
    """The command's environment: the instance's, minus the PYTHONPATH entry that let the
    instance import asyncfn (a command may run another Python)."""
    env = dict(environ)
    parts = env.get("PYTHONPATH", "").split(os.pathsep)
    if parts and parts[0] == asyncfn_root:
        rest = os.pathsep.join(parts[1:])
        if rest:
            env["PYTHONPATH"] = rest
        else:
            env.pop("PYTHONPATH")
    return env


def attribute_env(attributes: dict[str, str] | None) -> dict[str, str]:
    """A task's CloudEvents attributes as environment variables: `CE_` + the name in upper
    case (`id` → `CE_ID`, `datacontenttype` → `CE_DATACONTENTTYPE`); a character a variable name
    cannot hold becomes `_`, and a NUL (which no environment can hold) ends the value."""
    return {
        "CE_" + _NOT_IN_NAME.sub("_", name.upper()): str(value).partition("\0")[0]
        for name, value in (attributes or {}).items()
    }


class CommandTasks:
    """Runs a task: spawn the argv (in the instance's process group), feed stdin, collect stdout,
    stream stderr, reap with rusage."""

    def __init__(self, argv: list[str], env: dict[str, str], send: protocol.Send) -> None:
        self._argv = argv
        self._env = env
        self._send = send
        self._instance_pid = os.getpid()

    def _die_with_instance(self) -> None:
        """preexec_fn; the bootstrap already looked prctl up, so the forked child does no dlopen."""
        lifeline.die_with_parent(self._instance_pid)

    def run(self, header: protocol.Message, payload: bytes) -> None:
        row: int = header["row"]
        try:
            proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**self._env, **attribute_env(header.get("attributes"))},
                preexec_fn=self._die_with_instance,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            failed = protocol.error_info(exc, "CommandFailed")
            failed["message"] = f"cannot run {self._argv[0]!r}: {exc}"
            self._send(protocol.result_message(row, error=failed, cpu_ms=0.0, max_rss_mb=0.0))
            return
        self._send(protocol.spawned_message(row, proc.pid))
        stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

        def on_stderr(line: str) -> None:
            stderr_tail.append(line)
            self._send(protocol.log_message(row, "stderr", line))

        stdout = communicate(proc, payload, on_stderr)
        # wait4 reaps with this child's own rusage (its reaped descendants included), which
        # stays exact when several commands run at once, unlike RUSAGE_CHILDREN deltas.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000.0
        max_rss_mb = usage.ru_maxrss / 1024.0
        if code == 0:
            result = protocol.result_value(stdout)
            self._send(
                protocol.result_message(row, result=result, cpu_ms=cpu_ms, max_rss_mb=max_rss_mb)
            )
            return
        how = f"exit code {code}" if code > 0 else f"signal {-code}"
        message = "\n".join([how, *stderr_tail])
        error: dict[str, Any] = {"type": "CommandFailed", "message": message, "traceback": None}
        self._send(protocol.result_message(row, error=error, cpu_ms=cpu_ms, max_rss_mb=max_rss_mb))


def communicate(
    proc: subprocess.Popen[bytes], payload: bytes, on_stderr: Callable[[str], None]
) -> bytes:
    """Write `payload` to stdin while reading stdout whole and stderr line by line, until all
    three pipes are closed (the child exited, or closed them)."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    out: list[bytes] = []
    splitter = LineSplitter()
    pending = memoryview(payload)
    with selectors.DefaultSelector() as selector:
        if pending:
            os.set_blocking(stdin.fileno(), False)
            selector.register(stdin, selectors.EVENT_WRITE)
        else:
            stdin.close()
        selector.register(stdout, selectors.EVENT_READ)
        selector.register(stderr, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                if key.fileobj is stdin:
                    try:
                        pending = pending[os.write(key.fd, pending[:_CHUNK]) :]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(stdin)
                        stdin.close()
                    continue
                data = os.read(key.fd, _CHUNK)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                if key.fileobj is stdout:
                    out.append(data)
                else:
                    for line in splitter.feed(data):
                        on_stderr(line)
    for line in splitter.flush():
        on_stderr(line)
    stdout.close()
    stderr.close()
    return b"".join(out)
