"""The framed messages between the parent and an instance, over a dedicated pipe pair.

A frame is a 4-byte big-endian body length, then the body: a 4-byte header length, the
orjson-encoded header (a dict whose "kind" names the message) and a raw tail (a `run`'s payload).
"""

from __future__ import annotations

import base64
import os
import struct
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

if TYPE_CHECKING:  # only the parent's PipeWriter uses a loop; the instance never imports asyncio
    import asyncio

Message = dict[str, Any]
Send = Callable[[Message], None]

# parent → instance
RUN = "run"
# instance → parent
READY = "ready"
IMPORT_ERROR = "import_error"
LOG = "log"
PROGRESS = "progress"
CHECKPOINT = "checkpoint"
SPAWNED = "spawned"
RESULT = "result"

MAX_BODY_BYTES = 1 << 30
_U32 = struct.Struct(">I")
_PREFIX = struct.Struct(">II")
_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS


class ProtocolError(Exception):
    """The other side sent bytes that are not a frame."""


def encode(header: Message, tail: bytes = b"") -> bytes:
    """One frame; raises TypeError (orjson.JSONEncodeError) if the header is not JSON-ready."""
    head = orjson.dumps(header, option=_DUMPS_OPTIONS)
    return b"".join((_PREFIX.pack(4 + len(head) + len(tail), len(head)), head, tail))


def _split_body(body: bytes | bytearray | memoryview) -> tuple[Message, bytes]:
    (head_len,) = _U32.unpack_from(body)
    header = orjson.loads(bytes(body[4 : 4 + head_len]))
    if not isinstance(header, dict) or "kind" not in header:
        raise ProtocolError("frame header is not a message")
    return header, bytes(body[4 + head_len :])


class FrameDecoder:
    """Incremental decoder for the parent's non-blocking reads: feed bytes, get whole frames."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[Message, bytes]]:
        buffer = self._buffer
        buffer += data
        frames: list[tuple[Message, bytes]] = []
        pos = 0
        while len(buffer) - pos >= 4:
            (size,) = _U32.unpack_from(buffer, pos)
            if size > MAX_BODY_BYTES or size < 4:
                raise ProtocolError(f"frame of {size} bytes")
            end = pos + 4 + size
            if len(buffer) < end:
                break
            frames.append(_split_body(buffer[pos + 4 : end]))
            pos = end
        del buffer[:pos]
        return frames


def read_frame(stream: BinaryIO) -> tuple[Message, bytes] | None:
    """Blocking read of one frame (the instance's side); None at end of file."""
    prefix = stream.read(4)
    if len(prefix) < 4:
        return None
    (size,) = _U32.unpack(prefix)
    if size > MAX_BODY_BYTES or size < 4:
        raise ProtocolError(f"frame of {size} bytes")
    body = stream.read(size)
    if len(body) < size:
        return None
    return _split_body(body)


class FrameWriter:
    """Blocking, thread-safe frame writer (the instance's side): one frame is never interleaved."""

    __slots__ = ("_fd", "_lock")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, header: Message, tail: bytes = b"") -> None:
        view = memoryview(encode(header, tail))
        with self._lock:
            while view:
                view = view[os.write(self._fd, view) :]


class PipeWriter:
    """The parent's non-blocking frame writes to an instance; what the pipe cannot take yet waits
    for the event loop to say it is writable."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        os.set_blocking(fd, False)
        self._loop = loop
        self._fd = fd
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            return
        if self._pending:
            self._pending += data
            return
        try:
            written = os.write(self._fd, data)
        except BlockingIOError:
            written = 0
        except BrokenPipeError:
            return  # the instance is gone; its exit reports the attempt
        if written < len(data):
            self._pending += memoryview(data)[written:]
            self._loop.add_writer(self._fd, self._flush)

    def _flush(self) -> None:
        try:
            written = os.write(self._fd, self._pending)
        except BlockingIOError:
            return
        except BrokenPipeError:
            written = len(self._pending)
        del self._pending[:written]
        if not self._pending:
            self._loop.remove_writer(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            if self._pending:
                self._loop.remove_writer(self._fd)
                self._pending.clear()
            os.close(self._fd)
            self._fd = -1


def result_value(value: Any) -> Any:
    """A handler's return value as the task's JSON `result` (the one place this is decided).

    JSON values pass as they are. Bytes that are UTF-8 JSON become that JSON, other UTF-8 bytes
    become the string, and anything else `{"base64": ...}`.
    """
    if not isinstance(value, bytes | bytearray | memoryview):
        return value
    raw = bytes(value)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def error_info(exc: BaseException, type_name: str | None = None) -> dict[str, Any]:
    """An exception as the task's `error`: type (class name), message and formatted traceback."""
    return {
        "type": type_name or type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def run_message(
    *,
    task_id: str,
    row: int,
    attempt: int,
    function: str,
    deadline: float,
    checkpoint: Any,
    api_url: str | None = None,
    token: str | None = None,
    attributes: dict[str, str] | None = None,
) -> Message:
    """`api_url` and `token` (a task token) let the handler call the platform back;
    `attributes` are the task's CloudEvents context."""
    return {
        "kind": RUN,
        "task_id": task_id,
        "row": row,
        "attempt": attempt,
        "function": function,
        "deadline": deadline,
        "checkpoint": checkpoint,
        "api_url": api_url,
        "token": token,
        "attributes": attributes or {},
    }


def ready_message(pid: int) -> Message:
    return {"kind": READY, "pid": pid}


def import_error_message(error: dict[str, Any]) -> Message:
    return {"kind": IMPORT_ERROR, "error": error}


def log_message(row: int, stream: str, line: str) -> Message:
    return {"kind": LOG, "row": row, "stream": stream, "line": line}


def progress_message(row: int, fraction: float, message: str | None) -> Message:
    return {"kind": PROGRESS, "row": row, "fraction": fraction, "message": message}


def checkpoint_message(row: int, checkpoint: Any) -> Message:
    return {"kind": CHECKPOINT, "row": row, "checkpoint": checkpoint}


def spawned_message(row: int, pid: int) -> Message:
    """A command runtime's child process, so the parent can count its memory."""
    return {"kind": SPAWNED, "row": row, "pid": pid}


def result_message(
    row: int,
    *,
    result: Any = None,
    error: dict[str, Any] | None = None,
    cpu_ms: float,
    max_rss_mb: float,
) -> Message:
    return {
        "kind": RESULT,
        "row": row,
        "ok": error is None,
        "result": result,
        "error": error,
        "cpu_ms": cpu_ms,
        "max_rss_mb": max_rss_mb,
    }
