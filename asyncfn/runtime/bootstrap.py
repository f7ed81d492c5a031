"""Runs inside an instance: ties itself to its parent, loads the handler once, then runs the tasks
the parent sends over the control pipe until that pipe closes.

    python -m asyncfn.runtime.bootstrap PPID RFD WFD CONCURRENCY RUNTIME TARGET [CODE_DIR]

PPID is the parent's pid, RFD and WFD the control pipe's ends. RUNTIME is "python" (TARGET is
the handler, `module:function`) or "command" (TARGET is the argv as a JSON list). Kept light:
no asyncio unless the handler is `async def`.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import queue
import resource
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, NoReturn

import orjson

import asyncfn
from asyncfn.runtime import lifeline, protocol
from asyncfn.runtime.command import CommandTasks, command_env
from asyncfn.runtime.context import Context

Execute = Callable[[protocol.Message, bytes], None]
_READ_BUFFER = 1 << 16


@dataclass(frozen=True, slots=True)
class Args:
    parent_pid: int
    read_fd: int
    write_fd: int
    concurrency: int
    runtime: str
    target: str
    code_dir: str | None

    @classmethod
    def parse(cls, argv: list[str]) -> Args:
        if len(argv) not in (6, 7):
            raise SystemExit(__doc__)
        parent, read_fd, write_fd, concurrency, runtime, target, *rest = argv
        return cls(
            int(parent),
            int(read_fd),
            int(write_fd),
            int(concurrency),
            runtime,
            target,
            rest[0] if rest and rest[0] else None,
        )


def _usage() -> tuple[float, float]:
    """This process's CPU ms so far and its peak RSS in MB."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000.0, usage.ru_maxrss / 1024.0


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


def _exit_instance(exc: BaseException) -> NoReturn:
    """SystemExit or KeyboardInterrupt from a handler ends the instance, as it would a script."""
    _flush_stdio()
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr, flush=True)
            code = 1
        os._exit(code or 0)
    traceback.print_exception(exc)
    _flush_stdio()
    os._exit(1)


def load_handler(target: str, code_dir: str | None) -> Callable[..., Any]:
    """Import `module:function` (the code dir first on sys.path) and return the function."""
    if code_dir:
        sys.path.insert(0, code_dir)
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise ValueError(f"handler must look like 'module:function', not {target!r}")
    handler = getattr(importlib.import_module(module_name), name)
    if not callable(handler):
        raise TypeError(f"handler {target!r} is a {type(handler).__name__}, not a function")
    return handler  # type: ignore[no-any-return]


def is_async(handler: Callable[..., Any]) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 - a class instance with async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


class PythonTasks:
    """Calls the handler for one task and sends its result with the call's CPU time and peak RSS."""

    def __init__(self, handler: Callable[..., Any], send: protocol.Send) -> None:
        self._handler = handler
        self._send = send

    def _context(self, header: protocol.Message) -> Context:
        return Context(
            task_id=header["task_id"],
            function=header["function"],
            attempt=header["attempt"],
            deadline=header["deadline"],
            last_checkpoint=header["checkpoint"],
            row=header["row"],
            send=self._send,
            api_url=header.get("api_url"),
            token=header.get("token"),
        )

    def call(self, header: protocol.Message, payload: bytes) -> None:
        cpu_before, _ = _usage()
        context = self._context(header)
        try:
            value = self._handler(payload, context)
        except BaseException as exc:
            context.close()
            self._finish(header["row"], cpu_before, exc=exc)
        else:
            context.close()
            self._finish(header["row"], cpu_before, value=value)

    async def call_async(self, header: protocol.Message, payload: bytes) -> None:
        cpu_before, _ = _usage()
        context = self._context(header)
        try:
            value = await self._handler(payload, context)
        except BaseException as exc:
            context.close()
            self._finish(header["row"], cpu_before, exc=exc)
        else:
            context.close()
            self._finish(header["row"], cpu_before, value=value)

    def _finish(
        self, row: int, cpu_before: float, *, value: Any = None, exc: BaseException | None = None
    ) -> None:
        if isinstance(exc, SystemExit | KeyboardInterrupt):
            _exit_instance(exc)
        _flush_stdio()
        cpu_after, max_rss_mb = _usage()
        cpu_ms = cpu_after - cpu_before
        if exc is None and inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            exc = TypeError("the handler returned an awaitable: declare it `async def`")
        if exc is not None:
            error = protocol.error_info(
                exc, "OutOfMemory" if isinstance(exc, MemoryError) else None
            )
            self._send(
                protocol.result_message(row, error=error, cpu_ms=cpu_ms, max_rss_mb=max_rss_mb)
            )
            return
        try:
            result = protocol.result_value(value)
            self._send(
                protocol.result_message(row, result=result, cpu_ms=cpu_ms, max_rss_mb=max_rss_mb)
            )
        except TypeError as bad:
            error = {
                "type": "TypeError",
                "message": f"the handler's return value is not JSON-serialisable: {bad}",
                "traceback": None,
            }
            self._send(
                protocol.result_message(row, error=error, cpu_ms=cpu_ms, max_rss_mb=max_rss_mb)
            )


def serve_blocking(reader: BinaryIO, execute: Execute, concurrency: int) -> None:
    """Run tasks as they arrive: inline when one at a time, else on `concurrency` threads."""
    if concurrency <= 1:
        while (frame := protocol.read_frame(reader)) is not None:
            execute(*frame)
        return
    work: queue.SimpleQueue[tuple[protocol.Message, bytes] | None] = queue.SimpleQueue()

    def worker() -> None:
        while (item := work.get()) is not None:
            execute(*item)

    threads = [
        threading.Thread(target=worker, name=f"asyncfn-task-{i}", daemon=True)
        for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    while (frame := protocol.read_frame(reader)) is not None:
        work.put(frame)
    for _ in threads:
        work.put(None)


def serve_async(reader: BinaryIO, tasks: PythonTasks, ready: Callable[[], None]) -> None:
    """Run an `async def` handler's tasks on one event loop kept for the instance's life; a
    thread reads the control pipe and hands each task to the loop. `ready` is called once the
    loop exists."""
    import asyncio  # here, not at the top: a sync handler's instance starts ~50 ms sooner

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ready()
    running: set[asyncio.Task[None]] = set()

    def start(header: protocol.Message, payload: bytes) -> None:
        task = loop.create_task(tasks.call_async(header, payload))
        running.add(task)
        task.add_done_callback(running.discard)

    def pump() -> None:
        try:
            while (frame := protocol.read_frame(reader)) is not None:
                loop.call_soon_threadsafe(start, *frame)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=pump, name="asyncfn-control", daemon=True).start()
    try:
        loop.run_forever()
    finally:
        for task in running:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*running, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _command_tasks(args: Args, send: protocol.Send) -> CommandTasks:
    argv = orjson.loads(args.target)
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"command must be a non-empty list of strings, not {args.target}")
    root = os.path.dirname(os.path.dirname(asyncfn.__file__ or ""))
    return CommandTasks(argv, command_env(dict(os.environ), root), send)


def main(argv: list[str] | None = None) -> int:
    args = Args.parse(sys.argv[1:] if argv is None else argv)
    lifeline.die_with_parent(args.parent_pid)
    os.set_inheritable(args.read_fd, False)  # a handler's own subprocesses must not hold them
    os.set_inheritable(args.write_fd, False)
    send = protocol.FrameWriter(args.write_fd).send
    with open(args.read_fd, "rb", buffering=_READ_BUFFER) as reader:
        if args.runtime == "command":
            try:
                commands = _command_tasks(args, send)
            except Exception as exc:
                send(protocol.import_error_message(protocol.error_info(exc)))
                return 1
            send(protocol.ready_message(os.getpid()))
            serve_blocking(reader, commands.run, args.concurrency)
            return 0
        try:
            handler = load_handler(args.target, args.code_dir)
        except BaseException as exc:
            send(protocol.import_error_message(protocol.error_info(exc)))
            return 1
        tasks = PythonTasks(handler, send)
        ready = protocol.ready_message(os.getpid())
        if is_async(handler):
            serve_async(reader, tasks, lambda: send(ready))
        else:
            send(ready)
            serve_blocking(reader, tasks.call, args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
