"""The CLI (as a real process) and the Python clients against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncfn import AsyncClient, Client, ConflictError, TaskFailed
from tests.e2e.harness import Server

HANDLER = """
def handler(event, context):
    print("working on", event.decode())
    context.progress(1.0, "done")
    return {"upper": event.decode().upper()}
"""


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncfn", "--url", server.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_deploys_a_folder_invokes_and_shows_tasks_and_logs(
    server: Server, tmp_path: Path
) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "main.py").write_text(HANDLER)
    deployed = cli(server, "deploy", "upper", "--handler", "main:handler", "--code", str(code))
    assert deployed.returncode == 0, deployed.stderr

    sync = cli(server, "invoke", "upper", "hello")
    assert sync.returncode == 0, sync.stderr
    assert json.loads(sync.stdout) == {"upper": "HELLO"}

    waited = cli(server, "invoke", "upper", "world", "--async", "--wait")
    assert waited.returncode == 0, waited.stderr
    task = json.loads(waited.stdout)
    assert task["status"] == "Succeeded" and task["result"] == {"upper": "WORLD"}
    assert task["progress"] == {"fraction": 1.0, "message": "done"}

    listing = cli(server, "tasks", "--function", "upper")
    assert listing.returncode == 0 and task["id"][:8] in listing.stdout

    logs = cli(server, "logs", task["id"], "--follow")
    assert logs.returncode == 0 and "working on world" in logs.stdout

    missing = cli(server, "invoke", "ghost", "x", "--async")
    assert missing.returncode == 1
    assert "not found" in missing.stderr


def test_client_invoke_async_handle_and_errors(server: Server, tmp_path: Path) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "main.py").write_text(HANDLER + "\ndef boom(e, c):\n    raise ValueError('no')\n")
    with Client(server.url) as client:
        client.deploy("upper", handler="main:handler", code=code)
        client.deploy("boom", handler="main:boom", code=code, async_={"max_retries": 0})
        handle = client.invoke_async("upper", "abc", task_id="client-1")
        assert handle.task_id == "client-1"
        assert handle.result(timeout=30) == {"upper": "ABC"}
        with pytest.raises(ConflictError) as dup:
            client.invoke_async("upper", "again", task_id="client-1")
        assert dup.value.existing_task_id == "client-1"
        with pytest.raises(TaskFailed) as failed:
            client.invoke_async("boom", b"").result(timeout=30)
        assert failed.value.error is not None and failed.value.error["type"] == "ValueError"
        batch = client.invoke_batch("upper", ["x", {"payload": "y"}])
        assert [h.result(timeout=30) for h in batch] == [{"upper": "X"}, {"upper": "Y"}]


async def test_async_client_parity(server: Server, tmp_path: Path) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "main.py").write_text(HANDLER)
    async with AsyncClient(server.url) as client:
        await client.deploy("upper", handler="main:handler", code=code)
        handle = await client.invoke_async("upper", "async")
        assert await handle.result(timeout=30) == {"upper": "ASYNC"}
        assert await client.invoke("upper", "sync") == {"upper": "SYNC"}
        page = await client.list_tasks(function="upper")
        assert len(page["items"]) == 2
