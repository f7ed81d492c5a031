"""Per-task capture of an instance's stdout and stderr: pipes read without blocking, split into
lines of at most 64 KiB, each line attributed to the task running on the instance when read."""

from __future__ import annotations

import codecs
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the instance's command runtime uses LineSplitter without paying for asyncio
    import asyncio

MAX_LINE_CHARS = 64 * 1024
READ_CHUNK = 1 << 16

OnLine = Callable[[str, str, float], None]
"""Receives (stream, line, at) for each captured line."""


def _chunks(line: str, max_len: int) -> list[str]:
    if len(line) <= max_len:
        return [line]
    return [line[i : i + max_len] for i in range(0, len(line), max_len)]


def split_lines(text: str, max_len: int = MAX_LINE_CHARS) -> list[str]:
    """A complete text (a log record) as lines, long ones split; a trailing newline adds none."""
    lines = text.splitlines() or [""]
    return [chunk for line in lines for chunk in _chunks(line, max_len)]


class LineSplitter:
    """Bytes in, complete lines out; UTF-8 decoded leniently, lines over `max_len` split."""

    __slots__ = ("_decoder", "_max_len", "_partial")

    def __init__(self, max_len: int = MAX_LINE_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._max_len = max_len
        self._partial = ""

    def feed(self, data: bytes) -> list[str]:
        text = self._partial + self._decoder.decode(data)
        *complete, self._partial = text.split("\n")
        lines = [
            chunk for line in complete for chunk in _chunks(line.removesuffix("\r"), self._max_len)
        ]
        if len(self._partial) > self._max_len:
            *full, self._partial = _chunks(self._partial, self._max_len)
            lines.extend(full)
        return lines

    def flush(self) -> list[str]:
        """The unterminated rest (output that did not end with a newline), if any."""
        rest = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        return _chunks(rest, self._max_len) if rest else []


class PipeCapture:
    """One pipe (stdout or stderr) of an instance, read whenever readable and when drained."""

    __slots__ = ("_closed", "_fd", "_loop", "_on_line", "_splitter", "stream")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, stream: str, on_line: OnLine
    ) -> None:
        os.set_blocking(fd, False)
        self._loop = loop
        self._fd = fd
        self.stream = stream
        self._on_line = on_line
        self._splitter = LineSplitter()
        self._closed = False
        loop.add_reader(fd, self.drain)

    def drain(self) -> None:
        """Read everything the pipe holds now; at end of file stop watching it."""
        while not self._closed:
            try:
                data = os.read(self._fd, READ_CHUNK)
            except BlockingIOError:
                return
            if not data:
                self.flush()
                self.close()
                return
            at = time.time()
            for line in self._splitter.feed(data):
                self._on_line(self.stream, line, at)

    def flush(self) -> None:
        """Hand on an unterminated last line (at the end of a task, or of the pipe)."""
        at = time.time()
        for line in self._splitter.flush():
            self._on_line(self.stream, line, at)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._fd)
            os.close(self._fd)


class OutputCapture:
    """An instance's stdout and stderr, with the last lines of stderr kept for crash reports.

    `owner()` names the task a line belongs to when it is read (None: no task, the line only
    feeds the tail); the instance drains both pipes before it reports a result, so everything
    a task printed before returning is attributed to it.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stdout_fd: int,
        stderr_fd: int,
        on_line: OnLine,
        *,
        tail_lines: int = 20,
    ) -> None:
        self._on_line = on_line
        self.stderr_tail: deque[str] = deque(maxlen=tail_lines)
        self._pipes = (
            PipeCapture(loop, stdout_fd, "stdout", self._line),
            PipeCapture(loop, stderr_fd, "stderr", self._line),
        )

    def _line(self, stream: str, line: str, at: float) -> None:
        if stream == "stderr":
            self.stderr_tail.append(line)
        self._on_line(stream, line, at)

    def drain(self) -> None:
        for pipe in self._pipes:
            pipe.drain()

    def flush(self) -> None:
        for pipe in self._pipes:
            pipe.flush()

    def close(self) -> None:
        """Read what is left and stop; a grandchild still holding the pipes cannot keep it open."""
        self.drain()
        self.flush()
        for pipe in self._pipes:
            pipe.close()
