"""Runs inside an instance: ties itself to its parent, loads the handler once (`load`), then runs
the tasks the parent sends over the control pipe until that pipe closes (`serve`).

    python -m asyncfn.runtime.bootstrap [--fork-server] PPID RFD WFD CONCURRENCY RUNTIME TARGET
                                        [CODE_DIR]

PPID is the parent's pid, RFD and WFD the control pipe's ends. RUNTIME is "python" (TARGET is
the handler, `module:function`) or "command" (TARGET is the argv as a JSON list). Kept light:
no asyncio unless the handler is `async def`.

With `--fork-server` the process loads once and then forks instances on request instead
(`serve_forks`, the other end of `forkserver.ForkServer`): RFD is its unix socket, WFD is -1.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import inspect
import os
import queue
import resource
import select
import signal
import socket
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
            attributes=header.get("attributes"),
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


@dataclass(frozen=True, slots=True)
class Loaded:
    """What an instance serves: a python handler or a command's argv, or why neither loaded
    (the import_error frame's `error`)."""

    handler: Callable[..., Any] | None = None
    command: list[str] | None = None
    error: dict[str, Any] | None = None


def load(runtime: str, target: str, code_dir: str | None) -> Loaded:
    """Import the handler (python) or check the argv (command); never raises for the code."""
    if runtime == "command":
        try:
            argv = orjson.loads(target)
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise ValueError(f"command must be a non-empty list of strings, not {target}")
        except ValueError as exc:  # orjson.JSONDecodeError too
            return Loaded(error=protocol.error_info(exc))
        return Loaded(command=argv)
    try:
        return Loaded(handler=load_handler(target, code_dir))
    except BaseException as exc:  # whatever the module raises at import, SystemExit included
        return Loaded(error=protocol.error_info(exc))


def serve(loaded: Loaded, read_fd: int, write_fd: int, concurrency: int) -> int:
    """Say ready (or why not) on the control pipe, then run tasks until it closes; the exit
    status the instance should end with."""
    os.set_inheritable(read_fd, False)  # a handler's own subprocesses must not hold them
    os.set_inheritable(write_fd, False)
    send = protocol.FrameWriter(write_fd).send
    with open(read_fd, "rb", buffering=_READ_BUFFER) as reader:
        if loaded.error is not None:
            send(protocol.import_error_message(loaded.error))
            return 1
        ready = protocol.ready_message(os.getpid())
        if loaded.command is not None:
            root = os.path.dirname(os.path.dirname(asyncfn.__file__ or ""))
            commands = CommandTasks(loaded.command, command_env(dict(os.environ), root), send)
            send(ready)
            serve_blocking(reader, commands.run, concurrency)
            return 0
        assert loaded.handler is not None
        tasks = PythonTasks(loaded.handler, send)
        if is_async(loaded.handler):
            serve_async(reader, tasks, lambda: send(ready))
        else:
            send(ready)
            serve_blocking(reader, tasks.call, concurrency)
    return 0


# -- the fork server ----------------------------------------------------------------------

FORK_FDS = 5
"""A fork request's descriptors: control read, control write, stdout, stderr, lifeline."""


def serve_forks(args: Args) -> int:
    """The fork server: load once, say ready, then fork an instance per request on the socket
    until the node closes it; every child's exit status goes back to the node.

    Single-threaded on purpose (a fork copies only the calling thread): a select() loop over
    the socket and a SIGCHLD wakeup pipe, no asyncio, no threads.
    """
    lifeline.die_with_parent(args.parent_pid)
    loaded = load(args.runtime, args.target, args.code_dir)
    if loaded.handler is not None and is_async(loaded.handler):
        importlib.import_module("asyncio")  # its instances make their loops without the import
    gc.freeze()  # the children's collections then leave the loaded objects' pages shared
    _flush_stdio()
    sock = socket.socket(fileno=args.read_fd)
    sock.setblocking(True)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_write)
    server_fds = (sock.fileno(), wake_read, wake_write)
    _tell(sock, {"kind": "ready", "pid": os.getpid(), "import_error": loaded.error})
    while True:
        readable, _, _ = select.select([sock.fileno(), wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
            _report_exits(sock)
        if sock.fileno() in readable:
            message, fds, _, _ = socket.recv_fds(sock, 4096, FORK_FDS, socket.MSG_CMSG_CLOEXEC)
            if not message:
                return 0  # the node closed its end; forked instances live on
            _fork(sock, fds, loaded, args.concurrency, server_fds)


def _tell(sock: socket.socket, message: protocol.Message, fds: list[int] | None = None) -> None:
    socket.send_fds(sock, [orjson.dumps(message)], fds or [])


def _report_exits(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _tell(sock, {"kind": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _fork(
    sock: socket.socket,
    fds: list[int],
    loaded: Loaded,
    concurrency: int,
    server_fds: tuple[int, ...],
) -> None:
    """Fork one instance and answer with its pid and a pidfd for it (opened here, before this
    loop can reap it, so the pid cannot be stale)."""
    try:
        if len(fds) != FORK_FDS:
            _tell(sock, {"kind": "fork_failed", "error": f"{len(fds)} descriptors, not 5"})
            return
        try:
            pid = os.fork()
        except OSError as exc:
            _tell(sock, {"kind": "fork_failed", "error": f"fork: {exc}"})
            return
        if pid == 0:
            _forked_instance(loaded, concurrency, fds, server_fds)
        with contextlib.suppress(OSError):  # the child does it too: whichever runs first
            os.setpgid(pid, pid)
        pidfd = os.pidfd_open(pid)
        try:
            _tell(sock, {"kind": "forked", "pid": pid}, [pidfd])
        finally:
            os.close(pidfd)
    finally:
        for fd in fds:
            os.close(fd)


def _forked_instance(
    loaded: Loaded, concurrency: int, fds: list[int], server_fds: tuple[int, ...]
) -> NoReturn:
    """The child side of a fork: become an instance like a spawned one, serve, exit."""
    code = 1
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in server_fds:
            os.close(fd)
        control_read, control_write, stdout, stderr, life = fds
        lifeline.die_with_pipe(life)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        for fd in (null, stdout, stderr):
            os.close(fd)
        code = serve(loaded, control_read, control_write, concurrency)
    except BaseException as exc:  # a forked child must never unwind into the server's loop
        traceback.print_exception(exc)
    finally:
        _flush_stdio()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--fork-server"]:
        return serve_forks(Args.parse(argv[1:]))
    args = Args.parse(argv)
    lifeline.die_with_parent(args.parent_pid)
    return serve(
        load(args.runtime, args.target, args.code_dir),
        args.read_fd,
        args.write_fd,
        args.concurrency,
    )


if __name__ == "__main__":
    sys.exit(main())
