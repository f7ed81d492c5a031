"""The command runtime on real processes: stdin in, stdout out, stderr to the log, failures."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from asyncfn.domain.outcomes import OutOfMemory, Raised, Succeeded, TimedOut

PY = sys.executable


async def test_a_command_reads_the_payload_on_stdin_and_its_stdout_is_the_result(runtime):
    pool = runtime.pool(
        command=[
            PY,
            "-c",
            "import json, os, sys; data = sys.stdin.buffer.read(); "
            "print(json.dumps({'len': len(data), 'cwd': os.getcwd(), 'head': data[:3].decode()}))",
        ]
    )
    payload = b"abc" + b"x" * (2 << 20)  # larger than a pipe's buffer both ways
    run = await pool.run(runtime.assign(payload))
    assert isinstance(run.outcome, Succeeded)
    assert run.outcome.result == {
        "len": len(payload),
        "cwd": str(runtime.tmp_path / "scratch"),
        "head": "abc",
    }
    assert run.outcome.resources.cpu_ms > 0
    assert run.outcome.resources.max_rss_mb > 1


async def test_command_output_encodes_like_a_bytes_return_value(runtime):
    pool = runtime.pool(
        command=[PY, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"]
    )
    cases = {
        b'{"a": 1}': {"a": 1},
        b"plain text": "plain text",
        b"\xff\x00": {"base64": "/wA="},
        b"": "",
    }
    for payload, result in cases.items():
        assert (await pool.run(runtime.assign(payload))).outcome.result == result


async def test_a_non_zero_exit_is_command_failed_with_the_last_stderr_lines(runtime):
    script = (
        "import sys\nfor i in range(30):\n    print(f'problem {i}', file=sys.stderr)\nsys.exit(3)\n"
    )
    pool = runtime.pool(command=[PY, "-c", script])
    a = runtime.assign()
    outcome = (await pool.run(a)).outcome
    assert isinstance(outcome, Raised)
    assert outcome.type == "CommandFailed"
    lines = outcome.message.splitlines()
    assert lines[0] == "exit code 3"
    assert lines[1:] == [f"problem {i}" for i in range(10, 30)]
    assert runtime.recorder.lines(a.row, "stderr") == [f"problem {i}" for i in range(30)]


async def test_a_command_that_does_not_exist_is_command_failed(runtime):
    pool = runtime.pool(command=["/nonexistent/tool", "--flag"])
    outcome = (await pool.run(runtime.assign())).outcome
    assert isinstance(outcome, Raised) and outcome.type == "CommandFailed"
    assert "/nonexistent/tool" in outcome.message


async def test_a_command_past_its_deadline_is_timed_out_and_killed(runtime):
    pool = runtime.pool(
        command=[PY, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(60)"],
        timeout_s=1,
    )
    a = runtime.assign(timeout_s=0.8)
    running = asyncio.ensure_future(pool.run(a))
    started = time.monotonic()
    outcome = (await running).outcome
    assert isinstance(outcome, TimedOut)
    assert time.monotonic() - started < 5
    assert pool.instances == ()
    assert runtime.children_of(os.getpid()) == []


async def test_a_command_runs_in_the_code_folder_and_several_run_at_once(runtime):
    code = runtime.code("", module="unused")
    (code / "tool.sh").write_text('#!/bin/sh\nsleep 0.5\ncat\necho " $(basename $(pwd))"\n')
    (code / "tool.sh").chmod(0o755)
    pool = runtime.pool(code_dir=code, command=["./tool.sh"], instance_concurrency=3)
    await pool.run(runtime.assign(b"warm"))
    started = time.monotonic()
    runs = await asyncio.gather(*(pool.run(runtime.assign(f"{i}".encode())) for i in range(3)))
    assert time.monotonic() - started < 1.3
    assert sorted(run.outcome.result for run in runs) == ["0 code\n", "1 code\n", "2 code\n"]
    assert len({run.instance_id for run in runs}) == 1


async def test_a_command_over_memory_mb_is_out_of_memory(runtime):
    hog = "import time; hog = b'x' * (300 << 20); time.sleep(30)"
    pool = runtime.pool(command=[PY, "-c", hog], memory_mb=128)
    outcome = (await pool.run(runtime.assign(timeout_s=20))).outcome
    assert isinstance(outcome, OutOfMemory)
    assert outcome.peak_mb > 128
