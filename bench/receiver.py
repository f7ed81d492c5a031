"""A webhook receiver for `deliver`, run as its own process: `python -m bench.receiver SECRET`.

A minimal HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies only) bound to
127.0.0.1 on a free port, which it prints as `PORT <n>` on stdout once listening. Every
`POST /hook` gets a 204 at once; the receiver counts the requests and the distinct
`X-Asyncfn-Delivery` ids, and for every `--check-every`-th request (the first included) verifies
`X-Asyncfn-Signature` against HMAC-SHA256(secret, f"{timestamp}." + body) and that the body is a
task record with status Succeeded. `GET /stats` answers the counts and every id seen (JSON).
SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import sys
import time
from typing import Any

HOST = "127.0.0.1"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class Receiver:
    def __init__(self, secret: str, check_every: int) -> None:
        self.secret = secret.encode()
        self.check_every = max(1, check_every)
        self.requests = 0
        self.ids: dict[str, int] = {}  # delivery id -> times received
        self.checked = 0
        self.bad: list[str] = []  # the first problems found in the sampled requests
        self.bad_count = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.connections = 0

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "distinct_ids": len(self.ids),
            "duplicates": self.requests - len(self.ids),
            "checked": self.checked,
            "bad": self.bad_count,
            "bad_examples": self.bad[:10],
            "first_at": self.first_at,
            "last_at": self.last_at,
            "connections": self.connections,
            "ids": self.ids,
        }

    def _problem(self, text: str) -> None:
        self.bad_count += 1
        if len(self.bad) < 10:
            self.bad.append(text)

    def _check(self, headers: dict[str, str], body: bytes) -> None:
        self.checked += 1
        timestamp = headers.get("x-asyncfn-timestamp", "")
        given = headers.get("x-asyncfn-signature", "")
        mac = hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(given, f"sha256={mac.hexdigest()}"):
            self._problem(f"bad signature {given!r} (timestamp {timestamp!r})")
            return
        try:
            record = json.loads(body)
        except ValueError:
            self._problem(f"body is not JSON: {body[:100]!r}")
            return
        if not isinstance(record, dict) or record.get("status") != "Succeeded":
            self._problem(f"unexpected record {body[:200]!r}")

    def hook(self, headers: dict[str, str], body: bytes) -> None:
        now = time.time()
        self.first_at = self.first_at or now
        self.last_at = now
        self.requests += 1
        delivery = headers.get("x-asyncfn-delivery", "")
        if not delivery:
            self._problem("no X-Asyncfn-Delivery header")
        self.ids[delivery] = self.ids.get(delivery, 0) + 1
        if (self.requests - 1) % self.check_every == 0:
            self._check(headers, body)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                size = int(headers.get("content-length", "0"))
                body = await reader.readexactly(size) if size else b""
                if method == "POST" and target == "/hook":
                    self.hook(headers, body)
                    writer.write(NO_CONTENT)
                elif method == "GET" and target == "/stats":
                    data = json.dumps(self.stats()).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
                    )
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # the client went away, or the receiver is stopping
        finally:
            writer.close()


async def main_async(secret: str, check_every: int) -> None:
    receiver = Receiver(secret, check_every)
    server = await asyncio.start_server(receiver.serve, HOST, 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__)
    p.add_argument("secret", help="the destination's HMAC secret")
    p.add_argument("--check-every", type=int, default=10, help="verify every Nth request (10)")
    args = p.parse_args(argv)
    asyncio.run(main_async(args.secret, args.check_every))
    return 0


if __name__ == "__main__":
    sys.exit(main())
