"""Node roles: what an `all`, `api` or `worker` node runs, so API and worker nodes scale apart.

- `all` (the default): everything below, on one port.
- `api`: the HTTP API (submit, read, control, admin, dashboard, metrics) and the services its
  routes need: the function catalog, keys and task tokens (auth), flow control (the tenants'
  submit gate), the submitter (its commits wake worker nodes through the store's NOTIFY), task
  control (a durable transition; the signal reaches the attempt's node), the attempt reporter
  (control writes "stop requested" lines to the task's log) and the completer it applies
  through. It runs no instance and no background work on tasks, so it needs a shared
  PostgreSQL store: on SQLite nothing would ever run what it accepts.
- `worker`: the engine and the runtime: the dispatcher and its pools, the autoscaler, the
  lease keeper and janitor (lost leases → Retrying), the scheduler (retry promotion, expiry),
  the schedule runner, the trigger sources and the deliverer. Its HTTP port answers
  `/healthz` and `/metrics` only; handlers' `context.client` calls the API at
  `ASYNCFN_API_URL`, or has no client when that is unset.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["all", "api", "worker"]

ROLES: tuple[Role, ...] = ("all", "api", "worker")


def runs_tasks(role: Role) -> bool:
    """True when the node claims and runs tasks (and does the work around them)."""
    return role != "api"


def serves_api(role: Role) -> bool:
    """True when the node serves the whole HTTP API, not only `/healthz` and `/metrics`."""
    return role != "worker"
