"""The handler's `Context` (public as `asyncfn.Context`): the task it runs, its deadline, and the
ways back to the platform: log, progress and checkpoints, sent over the instance's control pipe."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import orjson

from asyncfn.runtime import protocol

if TYPE_CHECKING:
    from asyncfn.client import Client

LOG_FORMAT = "%(levelname)s %(message)s"


class _TaskLogHandler(logging.Handler):
    """Sends each record to the task's log (stream "log"), formatted as one message."""

    def __init__(self, row: int, send: protocol.Send) -> None:
        super().__init__()
        self._row = row
        self._send = send
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(protocol.log_message(self._row, "log", self.format(record)))
        except Exception:
            self.handleError(record)


class Context:
    """What a handler knows about the task it runs, and how it talks back to the platform.

    A python function's handler is called once per task as ``handler(event, context)``, where
    ``event`` is the payload (bytes) and ``context`` is this object; ``async def`` handlers
    work the same way::

        def handler(event: bytes, context: asyncfn.Context) -> dict:
            start = context.last_checkpoint or 0
            for i in range(start, 100):
                work(i)
                context.checkpoint(i + 1)   # a retried task resumes from here
                context.progress((i + 1) / 100, f"step {i + 1}")
                context.logger.info("done %d", i)
            return {"steps": 100}

    Attributes:
        task_id: the task's id (client-given or generated).
        function: the function's name.
        attempt: 1 for the first run, 2 for the first retry, and so on.
        deadline: POSIX time (seconds) at which the platform kills the attempt.
        last_checkpoint: the value of the task's latest ``checkpoint()`` — from an earlier
            attempt when the task is retried, None when there is none.
        client: an ``asyncfn.Client`` of the node that runs the task, holding a token scoped to
            the task's tenant and valid while the task lives (to submit sub-tasks, read
            tasks, ...) — never the key the task was submitted with.
        attributes: the CloudEvents context attributes of a task submitted as an event
            (``{"id": ..., "source": ..., "type": ..., "specversion": "1.0", ...}``, extensions
            included, values as strings); an empty dict for any other task.
    """

    __slots__ = (
        "_api_url",
        "_client",
        "_logger",
        "_row",
        "_send",
        "_token",
        "attempt",
        "attributes",
        "deadline",
        "function",
        "last_checkpoint",
        "task_id",
    )

    def __init__(
        self,
        *,
        task_id: str,
        function: str,
        attempt: int,
        deadline: float,
        last_checkpoint: Any,
        row: int,
        send: protocol.Send,
        api_url: str | None = None,
        token: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> None:
        self.task_id = task_id
        self.function = function
        self.attempt = attempt
        self.deadline = deadline
        self.last_checkpoint = last_checkpoint
        self.attributes: dict[str, str] = dict(attributes or {})
        self._row = row
        self._send = send
        self._logger: logging.Logger | None = None
        self._api_url = api_url
        self._token = token
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """A client of the platform acting for this task's tenant (made on first use)."""
        if self._client is None:
            if self._api_url is None or self._token is None:
                raise RuntimeError("this instance was started without the platform's API")
            # imported on first use: most handlers never call back, and httpx costs startup
            from asyncfn.client import Client

            self._client = Client(self._api_url, api_key=self._token)
        return self._client

    def close(self) -> None:
        """Release `client`'s connections (the runtime calls this when the attempt ends)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def remaining_s(self) -> float:
        """Seconds left before the deadline (0.0 once it has passed)."""
        return max(0.0, self.deadline - time.time())

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records (INFO and above unless you `setLevel`) go to the task's log."""
        if self._logger is None:
            logger = logging.Logger(f"asyncfn.{self.function}", logging.INFO)
            logger.propagate = False
            logger.addHandler(_TaskLogHandler(self._row, self._send))
            self._logger = logger
        return self._logger

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far the task is, from 0.0 to 1.0, with an optional short message."""
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise TypeError(f"progress fraction must be a number, not {type(fraction).__name__}")
        if math.isnan(fraction) or not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be between 0 and 1, not {fraction!r}")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"progress message must be a string, not {type(message).__name__}")
        self._send(protocol.progress_message(self._row, float(fraction), message))

    def checkpoint(self, obj: Any) -> None:
        """Save `obj` (JSON-serialisable) as the task's checkpoint; a retry gets it back as
        ``last_checkpoint``. It also becomes this context's ``last_checkpoint`` at once."""
        try:
            self._send(protocol.checkpoint_message(self._row, obj))
        except orjson.JSONEncodeError as exc:
            raise TypeError(f"checkpoint must be JSON-serialisable: {exc}") from None
        self.last_checkpoint = obj

    def __repr__(self) -> str:
        return (
            f"Context(task_id={self.task_id!r}, function={self.function!r}, "
            f"attempt={self.attempt}, remaining_s={self.remaining_s():.1f})"
        )
