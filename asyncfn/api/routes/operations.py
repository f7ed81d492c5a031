"""Routes for bulk operations: `POST /v1/tasks:stop|:rerun|:purge` over a task filter (a dry
run answers the count; otherwise a tracked operation, 202), and `GET /v1/operations[/{id}]`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from asyncfn.api.deps import node_of, tenant_of
from asyncfn.api.render import json_response, parse_rfc3339
from asyncfn.domain.operations import Operation, OperationKind, TaskFilter
from asyncfn.domain.records import rfc3339
from asyncfn.domain.states import TaskStatus

router = APIRouter(tags=["operations"])

MAX_LABELS = 16
FILTER_FIELDS = "function, status, created_after, created_before, key, labels"


class FilterIn(BaseModel):
    """Which tasks: every field given must hold. At least one is required (`"all": true` to
    mean every task of the tenant)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    everything: bool = Field(False, alias="all")
    function: str | None = Field(None, min_length=1, max_length=128)
    status: list[TaskStatus] | None = Field(None, min_length=1)
    created_after: str | None = Field(None, description="RFC 3339; tasks created after it")
    created_before: str | None = Field(None, description="RFC 3339; tasks created before it")
    key: str | None = Field(
        None, min_length=1, max_length=1024, description="any of the task's key values"
    )
    labels: dict[str, str] | None = Field(
        None, max_length=MAX_LABELS, description="each must equal the task's attribute"
    )

    @field_validator("created_after", "created_before")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_rfc3339(value)
            except ValueError as exc:
                raise ValueError(f"not an RFC 3339 time: {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> FilterIn:
        if self.to_filter().empty:
            raise ValueError(f'give at least one of {FILTER_FIELDS}, or "all": true')
        return self

    def to_filter(self) -> TaskFilter:
        return TaskFilter(
            function=self.function,
            statuses=tuple(dict.fromkeys(self.status or ())),
            created_after=_seconds(self.created_after),
            created_before=_seconds(self.created_before),
            key=self.key,
            labels=tuple(sorted((self.labels or {}).items())),
            everything=self.everything,
        )


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: FilterIn
    dry_run: bool = False


def _seconds(value: str | None) -> float | None:
    return None if value is None else parse_rfc3339(value)


def filter_json(f: TaskFilter) -> dict[str, Any]:
    """The filter as given, times in RFC 3339."""
    out = f.to_json()
    for name in ("created_after", "created_before"):
        if name in out:
            out[name] = rfc3339(out[name])
    return out


def operation_json(op: Operation) -> dict[str, Any]:
    return {
        "id": op.id,
        "kind": op.kind,
        "status": op.status,
        "filter": filter_json(op.filter),
        "total": op.total,
        "done": op.done,
        "skipped": op.skipped,
        "created_at": rfc3339(op.created_at),
        "updated_at": rfc3339(op.updated_at),
        "finished_at": rfc3339(op.finished_at),
        "error": op.error,
    }


async def _bulk(kind: OperationKind, body: BulkIn, request: Request) -> Response:
    runner = node_of(request).operations
    tenant = tenant_of(request)
    task_filter = body.filter.to_filter()
    if body.dry_run:
        count = await runner.count(tenant, kind, task_filter)
        return json_response({"dry_run": True, "kind": kind, "count": count})
    op = await runner.create(tenant, kind, task_filter)
    headers = {"Location": f"/v1/operations/{op.id}"}
    return json_response({"operation": operation_json(op)}, 202, headers)


@router.post("/v1/tasks:stop", status_code=202)
async def bulk_stop(body: BulkIn, request: Request) -> Response:
    """Stop every task the filter matches that has not ended: waiting ones in batches of one
    transaction each, running ones through their instances. `dry_run` answers the count."""
    return await _bulk("stop", body, request)


@router.post("/v1/tasks:rerun", status_code=202)
async def bulk_rerun(body: BulkIn, request: Request) -> Response:
    """Rerun every ended task the filter matches (each a new task, `rerun_of` the original)."""
    return await _bulk("rerun", body, request)


@router.post("/v1/tasks:purge", status_code=202)
async def bulk_purge(body: BulkIn, request: Request) -> Response:
    """Purge every ended, not yet purged task the filter matches (its data erased)."""
    return await _bulk("purge", body, request)


@router.get("/v1/operations/{op_id}")
async def get_operation(op_id: str, request: Request) -> Response:
    op = await node_of(request).operations.get(tenant_of(request), op_id)
    return json_response(operation_json(op))


@router.get("/v1/operations")
async def list_operations(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> Response:
    """The tenant's operations, newest first."""
    ops = await node_of(request).operations.list(tenant_of(request), limit)
    return json_response({"items": [operation_json(op) for op in ops]})
