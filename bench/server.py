"""A fresh asyncfn server per run: free loopback port, temp data dir, no-op function deployed."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from bench import procs

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
NOOP_SOURCE = "def handler(event, context):\n    return None\n"
FUNCTION = "noop"


class ServerError(RuntimeError):
    """The server did not start, died, or refused the benchmark's setup."""


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """How a benchmark function is deployed (the server's defaults for fields left None)."""

    max_instances: int = 2
    instance_concurrency: int = 8
    """2 instances of 8 concurrent tasks: the peers' 2 workers, with Dramatiq's default threads."""
    timeout_s: int | None = None
    stop_grace_s: float | None = None
    on_success_url: str | None = None
    """An http result destination for Succeeded tasks (`async.on_success`), if any."""
    on_success_secret: str | None = None

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "runtime": "python",
            "handler": "main:handler",
            "max_instances": self.max_instances,
            "instance_concurrency": self.instance_concurrency,
        }
        if self.timeout_s is not None:
            body["timeout_s"] = self.timeout_s
        if self.stop_grace_s is not None:
            body["stop_grace_s"] = self.stop_grace_s
        if self.on_success_url is not None:
            destination: dict[str, object] = {"type": "http", "url": self.on_success_url}
            if self.on_success_secret is not None:
                destination["secret"] = self.on_success_secret
            body["async"] = {"on_success": destination}
        return body


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def code_zip(source: str = NOOP_SOURCE) -> bytes:
    """A function's code as a zip holding `main.py` (by default the no-op handler)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("main.py", source)
    return buf.getvalue()


def serve_command(python: str) -> list[str]:
    return [python, "-m", "asyncfn", "serve"]


NO_GROUP_COMMIT = "--no-group-commit"
"""The serve flag that commits each write alone: the baseline group commit is measured against."""

ENV_ARG = "--bench-env="
"""Prefix of an `extra_args` item that sets a variable of the server's environment instead."""


def env_args(**env: object) -> tuple[str, ...]:
    """`extra_args` items that start the server with these `ASYNCFN_*`-style variables set."""
    return tuple(f"{ENV_ARG}{name}={value}" for name, value in env.items())


def split_env_args(args: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """`extra_args` as (serve flags, environment variables)."""
    flags: list[str] = []
    env: dict[str, str] = {}
    for arg in args:
        if arg.startswith(ENV_ARG):
            name, _, value = arg.removeprefix(ENV_ARG).partition("=")
            env[name] = value
        else:
            flags.append(arg)
    return flags, env


class BenchServer:
    """Context manager: start a server, deploy the no-op function, stop everything on exit."""

    def __init__(
        self,
        python: str = sys.executable,
        function: FunctionConfig | None = None,
        extra_args: tuple[str, ...] = (),
        keep: bool = False,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.python = python
        self.function_config = function or FunctionConfig()
        self.extra_args = extra_args
        self.flags, self.env = split_env_args(extra_args)
        self.keep = keep
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.data_dir = Path()
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._log: io.BufferedWriter | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "asyncfn.db"

    @property
    def log_path(self) -> Path:
        if self._tmp is None:
            raise ServerError("the server has not been started")
        return self._tmp / "server.log"

    def invoke_url(self, function: str = FUNCTION) -> str:
        return f"{self.base_url}/v1/functions/{function}/invocations"

    def batch_url(self, function: str = FUNCTION) -> str:
        return f"{self.base_url}/v1/functions/{function}/invocations:batch"

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> BenchServer:
        try:
            self.start()
            self.deploy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="asyncfn-bench-"))
        self.data_dir = self._tmp / "data"
        self.port = free_port()
        self._log = self.log_path.open("wb")
        argv = [
            *serve_command(self.python),
            *("--port", str(self.port), "--data-dir", str(self.data_dir)),
            *("--node-name", self.env.get("ASYNCFN_NODE_NAME", "bench"), *self.flags),
        ]
        # A session of its own: Ctrl-C reaches the harness only, which then stops the server.
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=os.environ | self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                self.check_alive()
                try:
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    waited = f"{self.startup_timeout_s:.0f} s"
                    raise ServerError(f"no healthy /healthz after {waited}\n{self.log_tail()}")
                time.sleep(0.1)

    @property
    def auth_headers(self) -> dict[str, str]:
        """The admin key's Authorization header when the server was started with one."""
        key = self.env.get("ASYNCFN_ADMIN_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def deploy(
        self,
        name: str = FUNCTION,
        config: FunctionConfig | None = None,
        source: str = NOOP_SOURCE,
    ) -> None:
        """Create or update function `name` (by default the no-op one) and upload its code."""
        body = (config or self.function_config).body()
        with httpx.Client(
            base_url=self.base_url, timeout=30.0, headers=self.auth_headers
        ) as client:
            resp = client.put(f"/v1/functions/{name}", json=body)
            if resp.status_code not in (200, 201):
                raise ServerError(f"PUT function answered {resp.status_code}: {resp.text}")
            resp = client.put(
                f"/v1/functions/{name}/code",
                content=code_zip(source),
                headers={"Content-Type": "application/zip"},
            )
            if resp.status_code not in (200, 201):
                raise ServerError(f"PUT code answered {resp.status_code}: {resp.text}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerError(f"server exited with {self.proc.returncode}\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the server and its instance processes."""
        return procs.tree_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def rss_mb(self) -> float:
        """Resident memory of the server process itself (not its instances), in MB."""
        return procs.rss_mb(self.proc.pid) if self.proc is not None else float("nan")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, ServerError):
            return "(no server log)"
        return "--- server log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM, wait, SIGKILL the group if needed; then kill any descendant left behind."""
        proc, self.proc = self.proc, None
        if proc is not None:
            leftovers = procs.descendants(proc.pid)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    print(f"bench: server {proc.pid} ignored SIGTERM; killing it", file=sys.stderr)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            killed = procs.kill_leftovers(leftovers)
            if killed:
                print(f"bench: killed processes the server left behind: {killed}", file=sys.stderr)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None and not self.keep:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
