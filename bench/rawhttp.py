"""Minimal HTTP/1.1 keep-alive clients (asyncio streams, and a blocking one on http.client):
low, steady overhead for timing."""

# httpx's AsyncClient adds about 2.5 ms per request on a 2-CPU machine, more than the server
# spends on a submit; this client writes one request and reads one Content-Length answer.

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Answer:
    """Status code and body of one response."""

    status: int
    body: bytes


class RawClient:
    """Requests to one host over a pool of keep-alive connections (one per request in flight)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: list[asyncio.StreamWriter] = []

    async def _connection(
        self, reuse: bool = True
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._idle and reuse:
            return self._idle.pop()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._all.append(writer)
        return reader, writer

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        return await self.request("POST", path, body, headers)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return await self.request("GET", path, b"", headers or {})

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        reused = bool(self._idle)
        reader, writer = await self._connection()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        writer.write(message)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            # The server closed this idle keep-alive connection (uvicorn's keep-alive timeout)
            # before reading the request: send it again on a new one, as HTTP clients do.
            writer.close()
            reader, writer = await self._connection(reuse=False)
            writer.write(message)
            head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        length = 0
        closing = False
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                closing = True
        payload = await reader.readexactly(length)
        if closing:
            writer.close()
        else:
            self._idle.append((reader, writer))
        return Answer(status, payload)

    async def close(self) -> None:
        for writer in self._all:
            writer.close()
        for writer in self._all:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._all.clear()
        self._idle.clear()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _NoDelayConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SyncClient:
    """Blocking requests over one keep-alive connection (http.client: little overhead per call)."""

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self._conn = _NoDelayConnection(host, port, timeout=timeout_s)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        self._conn.request(method, path, body=body, headers=headers or {})
        resp = self._conn.getresponse()
        return Answer(resp.status, resp.read())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
