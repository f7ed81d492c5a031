"""What the HTTP edge needs from a node (a structural protocol `Node` satisfies) and the caller's
tenant. Routes reach the node through `node_of(request)`; nothing is global."""

from __future__ import annotations

from typing import Protocol, cast

from starlette.requests import Request

from asyncfn.domain.models import DEFAULT_TENANT
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.completions import Completions
from asyncfn.engine.control import TaskControl
from asyncfn.engine.schedules import ScheduleRunner
from asyncfn.engine.submitter import Submitter
from asyncfn.engine.triggers.runner import TriggerRunner
from asyncfn.metrics import NodeMetrics
from asyncfn.settings import Settings
from asyncfn.store.base import Store


class NodeServices(Protocol):
    settings: Settings
    store: Store
    catalog: FunctionCatalog
    submitter: Submitter
    completions: Completions
    control: TaskControl
    schedules: ScheduleRunner
    triggers: TriggerRunner
    metrics: NodeMetrics


def node_of(request: Request) -> NodeServices:
    return cast(NodeServices, request.app.state.node)


def tenant_of(request: Request) -> str:
    """The caller's tenant. The embedded node serves one tenant with auth off on loopback."""
    return DEFAULT_TENANT
