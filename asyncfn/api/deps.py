"""What the HTTP edge needs from a node (a structural protocol `Node` satisfies) and the caller
(`principal_of`, `tenant_of`, named by `api.auth` at the ASGI entry). Routes reach the node
through `node_of(request)`; nothing is global."""

from __future__ import annotations

from typing import Protocol, cast

from starlette.requests import Request

from asyncfn.api.auth import OPEN, Principal, require_admin
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.completions import Completions
from asyncfn.engine.control import TaskControl
from asyncfn.engine.dispatcher import Dispatcher
from asyncfn.engine.flow import FlowControl
from asyncfn.engine.keys import KeyRing
from asyncfn.engine.operations import OperationRunner
from asyncfn.engine.schedules import ScheduleRunner
from asyncfn.engine.submitter import Submitter
from asyncfn.engine.tokens import TaskTokens
from asyncfn.engine.triggers.runner import TriggerRunner
from asyncfn.metrics import NodeMetrics
from asyncfn.settings import Settings
from asyncfn.store.base import Store


class NodeServices(Protocol):
    settings: Settings
    store: Store
    catalog: FunctionCatalog
    submitter: Submitter
    flow: FlowControl
    dispatcher: Dispatcher
    completions: Completions
    control: TaskControl
    schedules: ScheduleRunner
    triggers: TriggerRunner
    keys: KeyRing
    operations: OperationRunner
    tokens: TaskTokens
    metrics: NodeMetrics


def node_of(request: Request) -> NodeServices:
    return cast(NodeServices, request.app.state.node)


def principal_of(request: Request) -> Principal:
    """The caller, as the ASGI entry named it (the open principal when nothing did: an app
    driven without FastPath, as some tests do)."""
    found = request.scope.get("state", {}).get("principal")
    return found if isinstance(found, Principal) else OPEN


def tenant_of(request: Request) -> str:
    """The caller's tenant: every read and write of a request is scoped to it."""
    return principal_of(request).tenant


def admin_of(request: Request) -> Principal:
    """The caller, who must hold the admin key (403 otherwise)."""
    principal = principal_of(request)
    require_admin(principal, node_of(request).keys)
    return principal
