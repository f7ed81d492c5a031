"""Node: builds the store, the engine's services, the runtime and the HTTP app from Settings;
starts them in order and stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import orjson
import uvicorn
import uvloop

from asyncfn.api.app import create_app, create_worker_app
from asyncfn.domain.models import DEFAULT_TENANT, ClaimedTask, FunctionSpec
from asyncfn.engine.catalog import FunctionCatalog
from asyncfn.engine.cluster import ClusterSignals
from asyncfn.engine.completer import Completer
from asyncfn.engine.completions import Completions
from asyncfn.engine.control import TaskControl
from asyncfn.engine.deliverer import Deliverer
from asyncfn.engine.dispatcher import Dispatcher
from asyncfn.engine.flow import FlowControl
from asyncfn.engine.heartbeat import NodeHeartbeat
from asyncfn.engine.janitor import Janitor
from asyncfn.engine.keys import KeyRing
from asyncfn.engine.leases import LeaseKeeper
from asyncfn.engine.operations import OperationRunner
from asyncfn.engine.reporter import AttemptReporter
from asyncfn.engine.scaling import ScalingService
from asyncfn.engine.scheduler import Scheduler
from asyncfn.engine.schedules import ScheduleRunner
from asyncfn.engine.service import Service, Supervisor
from asyncfn.engine.submitter import Submitter
from asyncfn.engine.tokens import TaskTokens
from asyncfn.engine.triggers.runner import TriggerRunner
from asyncfn.metrics import NodeMetrics
from asyncfn.roles import runs_tasks, serves_api
from asyncfn.runtime.bundles import BundleCache, zip_directory
from asyncfn.runtime.capacity import NodeCapacity
from asyncfn.runtime.process import InstanceLimits, resolve_user
from asyncfn.server_logs import configure_logging
from asyncfn.settings import Settings
from asyncfn.store import open_store

log = logging.getLogger("asyncfn.node")

SERVICE_STOP_S = 8.0
"""The longest one service may take to stop (the dispatcher's grace for running attempts and
its pools' own grace fit within it)."""


def _task_stacks() -> str:
    """Where every asyncio task of the loop is waiting: for a shutdown that does not end."""
    lines = []
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=3)
        where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames))
        lines.append(f"  {task.get_name()}: {where}")
    return "\n".join(lines)


class InsecureExposure(RuntimeError):
    """The node would serve a non-loopback address with no credentials required."""


class Node:
    """One asyncfn node. `start()` brings services up in dependency order; `stop()` runs the
    written shutdown sequence: stop claiming → drain or hand back running attempts → flush
    logs → flush the group commit and close the store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data_dir = settings.data_dir.resolve()
        self.supervisor = Supervisor()
        self.metrics = NodeMetrics()
        self.store = open_store(settings.store_url, group_commit=settings.group_commit)
        self.catalog = FunctionCatalog(self.store)
        self.keys = KeyRing(
            self.store,
            admin_key=settings.admin_key,
            sealing_secret=settings.signing_key_secret,
        )
        self.tokens = TaskTokens(self.store)
        self.api_url: str | None = settings.api_url
        """Where handlers call the API: ASYNCFN_API_URL, else this node's own address once its
        HTTP server listens (a worker's port serves no API: none)."""
        self.completions = Completions()
        self.reporter = AttemptReporter(
            self.store, self.supervisor, max_bytes=settings.log_max_bytes_per_task
        )
        self.scheduler = Scheduler(
            self.store,
            self.catalog,
            self.supervisor,
            lambda key: self._notify(key),
            metrics=self.metrics,
        )
        self.completer = Completer(
            self.store,
            self.reporter,
            self.completions,
            on_retry=self.scheduler.retry_at,
            metrics=self.metrics,
        )
        self.flow = FlowControl(self.store, self.supervisor)
        self.capacity = NodeCapacity(settings.max_instances, settings.memory_budget_mb)
        self.dispatcher = Dispatcher(
            self.store,
            self.catalog,
            BundleCache(data_dir / "bundles"),
            self.completer,
            self.reporter,
            self.supervisor,
            node=settings.node_name,
            lease_s=settings.lease_s,
            scratch_dir=data_dir / "scratch",
            instance_env=settings.instance_env,
            instance_limits=instance_limits(settings),
            metrics=self.metrics,
            credentials=self._task_credentials,
            flow=self.flow,
            capacity=self.capacity,
            idle_ttl_s=settings.idle_ttl_s,
            fork_server=settings.fork_server,
            labels=settings.labels,
        )
        self.scaling = ScalingService(
            self.store, self.supervisor, self.dispatcher.pools, capacity=self.capacity
        )
        self.flow.subscribe(self.dispatcher.tenant_changed)
        self.submitter = Submitter(
            self.store, self.catalog, self.dispatcher.notify, metrics=self.metrics
        )
        self.metrics.bind(self.store.queue_stats, self.dispatcher.instance_counts)
        self.schedules = ScheduleRunner(
            self.store, self.catalog, self.supervisor, lambda key: self._notify(key)
        )
        self.triggers = TriggerRunner(
            self.store,
            self.catalog,
            self.submitter,
            self.supervisor,
            node=settings.node_name,
            metrics=self.metrics,
        )
        self.janitor = Janitor(
            self.store,
            self.catalog,
            self.completer,
            self.supervisor,
            self.dispatcher.running_rows,
            node=settings.node_name,
            interval_s=settings.lease_s / 2,
            retention_s=settings.retention_days * 86_400,
        )
        self.leases = LeaseKeeper(
            self.store,
            self.supervisor,
            self.dispatcher.running_rows,
            node=settings.node_name,
            lease_s=settings.lease_s,
        )
        self.control = TaskControl(
            self.store,
            self.catalog,
            self.dispatcher,
            self.completer,
            self.reporter,
            self.completions,
            metrics=self.metrics,
        )
        self.dispatcher.on_key_limits(self.control.key_limits)
        self.cluster = ClusterSignals(
            self.store, self.catalog, self.dispatcher, self.control, self.supervisor
        )
        self.operations = OperationRunner(
            self.store,
            self.control,
            self.supervisor,
            node=settings.node_name,
            lease_s=settings.lease_s,
        )
        self.deliverer = Deliverer(
            self.store,
            self.submitter,
            self.supervisor,
            node=settings.node_name,
            backoff_base_s=settings.delivery_backoff_base_s,
            allow_hosts=settings.webhook_allow_hosts,
            metrics=self.metrics,
        )
        self.completions.subscribe(self.deliverer.wake)
        self.heartbeat = NodeHeartbeat(
            self.store,
            self.supervisor,
            node=settings.node_name,
            role=settings.role,
            labels=settings.labels,
        )
        self._services: list[Service] = [
            self.catalog,
            self.keys,
            self.tokens,
            self.janitor,
            self.reporter,
            self.completer,
            self.scheduler,
            self.schedules,
            self.flow,
            self.dispatcher,
            self.scaling,
            self.control,
            self.cluster,
            self.operations,
            self.deliverer,
            self.leases,
            self.triggers,
            self.heartbeat,  # last: live (placeable) once all is up; first to go
        ]
        if not runs_tasks(settings.role):  # an api node: see asyncfn.roles
            self._services = [s for s in self._services if not self._works_on_tasks(s)]
        self._started: list[Service] = []

    def _works_on_tasks(self, service: Service) -> bool:
        """The services only a node that runs tasks starts (asyncfn.roles says why)."""
        workers: tuple[Service, ...] = (
            self.janitor,
            self.scheduler,
            self.schedules,
            self.dispatcher,
            self.scaling,
            self.deliverer,
            self.leases,
            self.triggers,
            self.operations,
        )
        return any(service is worker for worker in workers)

    def _notify(self, key: tuple[str, str]) -> None:
        self.dispatcher.notify(key)

    def _task_credentials(self, task: ClaimedTask, deadline: float) -> tuple[str | None, str]:
        return self.api_url, self.tokens.mint(task.tenant, task.id, deadline)

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        (self.settings.data_dir / "scratch").mkdir(exist_ok=True)
        await self.store.open()
        try:
            await self._refuse_open_exposure()
        except InsecureExposure:
            await self.store.close()
            raise
        for service in self._services:
            await service.start()
            self._started.append(service)
        for folder in self.settings.deploy:
            await self.deploy_folder(folder)

    async def stop(self) -> None:
        """Stop the services in reverse, each within SERVICE_STOP_S (one that takes longer is
        logged with what every task was waiting on, and left behind: a shutdown must end),
        then close the store."""
        while self._started:
            service = self._started.pop()
            try:
                async with asyncio.timeout(SERVICE_STOP_S):
                    await service.stop()
            except TimeoutError:
                log.error(
                    "stopping %s took over %.0f s; going on with the shutdown. Tasks:\n%s",
                    service.name,
                    SERVICE_STOP_S,
                    _task_stacks(),
                )
            except Exception:
                log.exception("stopping %s failed; going on with the shutdown", service.name)
        try:
            async with asyncio.timeout(SERVICE_STOP_S):
                await self.store.close()
        except TimeoutError:
            log.error("closing the store took over %.0f s:\n%s", SERVICE_STOP_S, _task_stacks())
        log.info("node %s stopped", self.settings.node_name)

    async def _refuse_open_exposure(self) -> None:
        """Auth is off only on loopback with no keys: refuse any other address without them."""
        await self.keys.start()
        if not self.keys.enabled and not self.settings.loopback_only:
            raise InsecureExposure(
                f"refusing to listen on {self.settings.host} with auth off: set "
                "ASYNCFN_ADMIN_KEY (then create tenant keys with `asyncfn keys create`), or "
                "listen on 127.0.0.1"
            )

    async def deploy_folder(self, folder: Path) -> list[str]:
        """Deploy every `folder/*/function.json` with its folder as code; answers the names."""
        names = []
        for name, config, code in await asyncio.to_thread(_read_functions, folder):
            config.update(name=name, tenant=DEFAULT_TENANT)
            await self.catalog.put(FunctionSpec.from_config(config))
            await self.catalog.set_code(DEFAULT_TENANT, name, code)
            names.append(name)
        if names:
            log.info("deployed %s from %s", ", ".join(names), folder)
        return names


def instance_limits(settings: Settings) -> InstanceLimits:
    """The limits every instance of this node starts with; LookupError when `instance_user`
    names no user of this host (the node refuses to start)."""
    return InstanceLimits(
        max_open_files=settings.instance_max_open_files,
        rlimit_as=settings.instance_rlimit_as,
        run_as=resolve_user(settings.instance_user) if settings.instance_user else None,
    )


def _read_functions(folder: Path) -> list[tuple[str, dict[str, Any], bytes]]:
    return [
        (path.parent.name, orjson.loads(path.read_bytes()), zip_directory(path.parent))
        for path in sorted(folder.glob("*/function.json"))
    ]


def serve(settings: Settings) -> None:
    """Run a node with its HTTP server until SIGINT/SIGTERM or a service failure."""
    configure_logging(settings.log_level, settings.log_format)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: every thread's stack
    uvloop.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    node = Node(settings)
    try:
        await node.start()
    except InsecureExposure as exc:
        print(f"asyncfn: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    config = uvicorn.Config(
        create_app(node) if serves_api(settings.role) else create_worker_app(node),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        lifespan="off",
        log_config=None,  # uvicorn's loggers write through configure_logging's handler
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    helpers = [
        loop.create_task(_exit_on_failure(node, server)),
        loop.create_task(_announce(node, server)),
    ]
    try:
        await server.serve()
    finally:
        for task in helpers:
            task.cancel()
        await node.stop()
    if node.supervisor.failure is not None:
        raise SystemExit(1)


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGINT/SIGTERM only ask it to exit: uvicorn would re-raise the
    signal when it returns, killing the process before the node's own shutdown has run."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def _exit_on_failure(node: Node, server: uvicorn.Server) -> None:
    await node.supervisor.failed.wait()
    server.should_exit = True


async def _announce(node: Node, server: uvicorn.Server) -> None:
    """Print where the node answers once it listens, and tell the node (its handlers' clients
    call it back there: a wildcard address becomes loopback)."""
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
        await asyncio.sleep(0.05)
    for sock in (s for srv in server.servers for s in srv.sockets):
        host, port = sock.getsockname()[:2]
        url = f"http://{host}:{port}"
        local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        if node.api_url is None and serves_api(node.settings.role):
            node.api_url = f"http://[{local}]:{port}" if ":" in local else f"http://{local}:{port}"
        if serves_api(node.settings.role):
            print(f"asyncfn: dashboard {url}/  API {url}/v1  docs {url}/docs", flush=True)
        else:
            print(f"asyncfn: worker {url}/healthz  metrics {url}/metrics", flush=True)
        break
