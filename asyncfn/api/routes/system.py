"""System routes: the probes (`/healthz`, `/metrics`: every role serves them) and the dashboard
at / with its files under /ui/."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.responses import FileResponse, PlainTextResponse

from asyncfn.api.deps import admin_of, node_of
from asyncfn.api.render import json_response
from asyncfn.domain.errors import NotFound
from asyncfn.metrics import CONTENT_TYPE

router = APIRouter(tags=["system"])
probes = APIRouter(tags=["system"])

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"
# The dashboard's files, served under /ui/ (a fixed list: nothing else in the folder is exposed).
JS = "text/javascript; charset=utf-8"
WEB_ASSETS = {
    **dict.fromkeys(
        (
            "app.js",
            "ui.js",
            "functions.js",
            "tasks.js",
            "task.js",
            "operations.js",
            "deadletters.js",
        ),
        JS,
    ),
    "style.css": "text/css; charset=utf-8",
}
NO_CACHE = {"Cache-Control": "no-cache"}


@probes.get("/healthz")
async def healthz(request: Request) -> Response:
    settings = node_of(request).settings
    return json_response({"status": "ok", "node": settings.node_name, "role": settings.role})


@probes.get(
    "/metrics",
    tags=["system"],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this node's metrics (its own registry). They cover every
    tenant, so with auth on they need the admin key."""
    node = node_of(request)
    if node.keys.enabled:
        admin_of(request)
    await node.metrics.refresh()
    return Response(node.metrics.exposition(), media_type=CONTENT_TYPE)


@router.get("/", include_in_schema=False)
async def index() -> Response:
    """The dashboard (asyncfn/web): static files that talk to the v1 API from the browser."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=NO_CACHE)


@router.get("/ui/{asset}", include_in_schema=False)
async def ui_asset(asset: str) -> Response:
    media_type = WEB_ASSETS.get(asset)
    if media_type is None:
        raise NotFound("asset", asset)
    return FileResponse(WEB_DIR / asset, media_type=media_type, headers=NO_CACHE)
