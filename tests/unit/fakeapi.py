"""A small real HTTP server speaking just enough of the v1 API for the client and CLI tests.

It runs `http.server` in a thread on 127.0.0.1, records every request it gets, and lets a test
script what a task does next (`script`: the statuses successive GETs reveal; `pending_logs`: lines
revealed one per logs GET; `slow_stops`: tasks a stop leaves Stopping; `stop_wait_s`: how long a
stop takes to answer). Task and function actions (`POST /v1/tasks/{id}:stop`, ...) follow the
node's transition rules loosely: a task that ended refuses stop/suspend/resume with 409
`transition_refused`, one that has not refuses rerun. Holds no tests itself; `test_client_*` and
`test_cli_*` import it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

TERMINAL = {"Succeeded", "Failed", "Stopped", "Expired", "Invalid"}
NOW = "2025-01-02T03:04:05Z"


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error(http_status: int, code: str, message: str, **extra: Any) -> Answer:
    return Answer(
        http_status, {"error": {"code": code, "message": message, "field": None, **extra}}
    )


def duplicate(task: dict[str, Any]) -> Answer:
    message = f"task id {task['id']!r} is already used (status {task['status']})"
    return error(409, "duplicate_task", message, task_id=task["id"], status=task["status"])


def refused(task: dict[str, Any], wanted: str) -> Answer:
    message = f"task {task['id']!r} is {task['status']}; it cannot move to {wanted}"
    return error(409, "transition_refused", message, task_id=task["id"], status=task["status"])


def action_of(rest: list[str]) -> list[str]:
    """`["id:stop"]` as `["id", "stop"]` (the last colon splits); anything else unchanged."""
    if len(rest) == 1 and ":" in rest[0]:
        return rest[0].rsplit(":", 1)
    return rest


class FakeApi:
    """The fake node. `url` once started; `seen` lists requests; state is plain dicts."""

    def __init__(self) -> None:
        self.functions: dict[str, dict[str, Any]] = {}
        self.code: dict[str, bytes] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.script: dict[str, list[dict[str, Any]]] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.pending_logs: dict[str, list[dict[str, Any]]] = {}
        self.slow_stops: set[str] = set()
        self.stop_wait_s = 0.0
        self.seen: list[Seen] = []
        self.outage = False
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    unquote(url.path),
                    dict(parse_qsl(url.query)),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with api.lock:
                    api.seen.append(seen)
                    try:
                        answer = api.route(seen)
                    except Exception as exc:  # a bug in the fake: answer it, visibly
                        answer = error(500, "fake_api_bug", repr(exc))
                self._send(answer)

            def _send(self, answer: Answer) -> None:
                if isinstance(answer.body, bytes | str):
                    raw = answer.body.encode() if isinstance(answer.body, str) else answer.body
                    content_type = "text/plain"
                else:
                    raw = json.dumps(answer.body).encode() if answer.body is not None else b""
                    content_type = "application/json"
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.status != 204:
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                if answer.status != 204:
                    self.wfile.write(raw)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- state helpers for tests

    def add_function(self, name: str, **config: Any) -> dict[str, Any]:
        function = {
            "name": name,
            "runtime": "python",
            "handler": "main:handler",
            "paused": False,
            **config,
        }
        function.update(code_sha256=None, created_at=NOW, updated_at=NOW)
        self.functions[name] = function
        return function

    def add_task(self, task_id: str, function: str = "echo", **fields: Any) -> dict[str, Any]:
        task = {
            "id": task_id,
            "function": function,
            "status": "Enqueued",
            "attempt": 0,
            "max_attempts": 4,
            "priority": 0,
            "created_at": NOW,
            "payload": "",
            "result": None,
            "error": None,
            "duration_ms": None,
            "rerun_of": None,
            "events": [{"status": "Enqueued", "at": NOW, "detail": None}],
            **fields,
        }
        self.tasks[task_id] = task
        return task

    def requests(self, method: str, prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]

    # -- routes

    def route(self, req: Seen) -> Answer:
        parts = req.path.strip("/").split("/")
        match parts:
            case ["healthz"] if self.outage:
                return Answer(503, "upstream down")
            case ["healthz"] if req.method == "GET":
                return Answer(200, {"status": "ok"})
            case ["v1", "functions", *rest]:
                return self.route_functions(req, rest)
            case ["v1", "tasks", *rest]:
                return self.route_tasks(req, rest)
        return error(404, "not_found", f"no route {req.method} {req.path}")

    def route_functions(self, req: Seen, rest: list[str]) -> Answer:
        match (req.method, action_of(rest)):
            case ("POST", [name, ("suspend" | "resume") as action]) if name in self.functions:
                self.functions[name]["paused"] = action == "suspend"
                return Answer(200, self.functions[name])
            case ("POST", [name, _]) if name not in self.functions:
                return error(404, "function_not_found", f"function {name!r} not found")
        match (req.method, rest):
            case ("GET", []):
                return Answer(200, {"items": list(self.functions.values())})
            case ("PUT", [name]):
                return self.put_function(name, req.json())
            case (_, [name, *_]) if name not in self.functions:
                return error(404, "function_not_found", f"function {name!r} not found")
            case ("GET", [name]):
                return Answer(200, self.functions[name])
            case ("DELETE", [name]):
                del self.functions[name]
                return Answer(204)
            case ("PUT", [name, "code"]):
                sha256 = hashlib.sha256(req.body).hexdigest()
                self.code[name] = req.body
                self.functions[name]["code_sha256"] = sha256
                return Answer(200, {"sha256": sha256, "size": len(req.body)})
            case ("POST", [name, "invocations"]):
                return self.invoke(name, req)
            case ("POST", [name, "invocations:batch"]):
                return self.invoke_batch(name, req.json())
        return error(405, "method_not_allowed", f"{req.method} {req.path}")

    def route_tasks(self, req: Seen, rest: list[str]) -> Answer:
        match (req.method, action_of(rest)):
            case ("POST", [task_id, _]) if task_id not in self.tasks:
                return error(404, "task_not_found", f"task {task_id!r} not found")
            case ("POST", [task_id, "rerun"]):
                return self.rerun(task_id, req.headers.get("x-task-id"))
            case ("POST", [task_id, action]):
                return self.control(task_id, action)
        match (req.method, rest):
            case ("GET", []):
                return self.list_tasks(req.query)
            case (_, [task_id, *_]) if task_id not in self.tasks:
                return error(404, "task_not_found", f"task {task_id!r} not found")
            case ("GET", [task_id]):
                return Answer(200, self.advance(task_id))
            case ("GET", [task_id, "logs"]):
                return self.read_logs(task_id, int(req.query.get("after", "0")))
        return error(405, "method_not_allowed", f"{req.method} {req.path}")

    def control(self, task_id: str, action: str) -> Answer:
        """stop, suspend, resume: refused (409) for a task already ended, as the node does."""
        task = self.tasks[task_id]
        wanted = {"stop": "Stopped", "suspend": "Suspended", "resume": "Enqueued"}.get(action)
        if wanted is None:
            return error(405, "method_not_allowed", f"no task action {action!r}")
        if action == "stop":
            time.sleep(self.stop_wait_s)  # the node waits for the task to stop before answering
            wanted = "Stopping" if task_id in self.slow_stops else wanted
        if task["status"] in TERMINAL or (action == "resume" and task["status"] != "Suspended"):
            return refused(task, wanted)
        task["status"] = wanted
        return Answer(200, {"task_id": task_id, "status": wanted})

    def rerun(self, task_id: str, new_id: str | None) -> Answer:
        original = self.tasks[task_id]
        if original["status"] not in TERMINAL:
            return refused(original, "Enqueued")
        if new_id is not None and new_id in self.tasks:
            return duplicate(self.tasks[new_id])
        task, _ = self.submit(original["function"], original["payload"], new_id)
        task["rerun_of"] = task_id
        return Answer(202, {"task_id": task["id"], "status": "Enqueued", "rerun_of": task_id})

    def put_function(self, name: str, config: dict[str, Any]) -> Answer:
        existed = name in self.functions
        function = self.add_function(name, **config)
        return Answer(200 if existed else 201, function)

    def submit(self, name: str, payload: str, task_id: str | None) -> tuple[dict[str, Any], bool]:
        if task_id is not None and task_id in self.tasks:
            return self.tasks[task_id], False
        task_id = task_id or f"t{len(self.tasks) + 1:04d}"
        return self.add_task(task_id, name, payload=payload), True

    def invoke(self, name: str, req: Seen) -> Answer:
        payload = req.body.decode(errors="replace")
        task, created = self.submit(name, payload, req.headers.get("x-task-id"))
        if not created:
            return duplicate(task)
        if req.headers.get("x-invocation-type") != "Sync":
            return Answer(202, {"task_id": task["id"], "status": "Enqueued"})
        headers = {"X-Task-Id": task["id"]}
        if req.body == b"fail":
            failure = {"type": "ValueError", "message": "boom", "traceback": "Traceback: boom"}
            task.update(status="Failed", error=failure)
            return Answer(
                502, {"error": {**failure, "task_id": task["id"], "status": "Failed"}}, headers
            )
        if req.body == b"slow":
            return Answer(504, error(504, "sync_timeout", "still running").body, headers)
        task.update(status="Succeeded", result={"echo": req.body.decode()})
        return Answer(200, task["result"], headers)

    def invoke_batch(self, name: str, items: list[Any]) -> Answer:
        answers = []
        for item in items:
            assert isinstance(item, dict) and "payload" in item, "the client sends full items"
            payload = item["payload"]
            text = payload if isinstance(payload, str) else json.dumps(payload)
            task, created = self.submit(name, text, item.get("task_id"))
            answers.append({"task_id": task["id"], "status": task["status"], "created": created})
        return Answer(202, {"items": answers})

    def advance(self, task_id: str) -> dict[str, Any]:
        """Each GET of a scripted task applies its next step."""
        task = self.tasks[task_id]
        if self.script.get(task_id):
            task.update(self.script[task_id].pop(0))
        return task

    def list_tasks(self, query: dict[str, str]) -> Answer:
        tasks = [
            t
            for t in reversed(self.tasks.values())
            if query.get("function") in (None, t["function"])
            and query.get("status") in (None, t["status"])
        ]
        start = int(query.get("cursor", "0"))
        end = start + int(query.get("limit", "50"))
        next_cursor = str(end) if end < len(tasks) else None
        return Answer(200, {"items": tasks[start:end], "next_cursor": next_cursor})

    def read_logs(self, task_id: str, after: int) -> Answer:
        """Each GET reveals one pending line; the task turns Succeeded once none is pending."""
        lines = self.logs.setdefault(task_id, [])
        pending = self.pending_logs.get(task_id)
        if pending:
            lines.append(pending.pop(0))
        elif pending is not None:
            self.tasks[task_id]["status"] = "Succeeded"
        items = [line for line in lines if line["seq"] > after]
        return Answer(200, {"items": items, "status": self.tasks[task_id]["status"]})
