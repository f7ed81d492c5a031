"""A real `asyncfn serve` process on 127.0.0.1, and helpers to deploy code to it and wait."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"Succeeded", "Failed", "Stopped", "Expired", "Invalid"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One node process; `start()` waits for /healthz, `kill()` is SIGKILL, `stop()` SIGTERM.
    `name` is its ASYNCFN_NODE_NAME (distinct per node of a cluster), `args` more serve flags."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        env: dict[str, str] | None = None,
        *,
        name: str = "e2e-node",
        args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.env = dict(env or {})
        self.name = name
        self.args = list(args)
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{port}.log"

    def start(self) -> Server:
        env = {**os.environ, "ASYNCFN_LEASE_S": "5", **self.env}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "asyncfn",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--node-name",
                self.name,
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # the node dumps every thread's stack
            time.sleep(0.5)
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(
                f"node {self.name} did not stop within 20 s:\n{self.log()[-6000:]}"
            ) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, textwrap.dedent(text))
    return buf.getvalue()


def deploy(http: httpx.Client, name: str, code: str | None, **config: Any) -> dict[str, Any]:
    config.setdefault("runtime", "python")
    if config["runtime"] == "python":
        config.setdefault("handler", "main:handler")
    resp = http.put(f"/v1/functions/{name}", json=config)
    assert resp.status_code in (200, 201), resp.text
    if code is not None:
        resp = http.put(f"/v1/functions/{name}/code", content=make_zip({"main.py": code}))
        assert resp.status_code == 200, resp.text
    return dict(http.get(f"/v1/functions/{name}").json())


def wait_terminal(http: httpx.Client, task_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        task = dict(http.get(f"/v1/tasks/{task_id}").json())
        if task["status"] in TERMINAL:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} still {task['status']} after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
