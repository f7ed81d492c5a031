"""Tenants, API keys and task tokens on a real node: auth off only on loopback with no keys,
every read and write scoped to the caller's tenant (another tenant's things answer 404), admin
routes behind the admin key, revocation, and the task-scoped client a handler gets."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Server, deploy, free_port, wait_terminal

ADMIN = "admin-key-for-the-e2e-suite-0123456789"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port(), env={"ASYNCFN_ADMIN_KEY": ADMIN}).start()
    try:
        yield srv
    finally:
        srv.stop()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def tenant_with_key(admin: httpx.Client, name: str) -> str:
    assert admin.post("/v1/tenants", json={"name": name}).status_code == 201
    made = admin.post(f"/v1/tenants/{name}/keys", json={"name": f"{name} ci"})
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def invoke(http: httpx.Client, function: str, payload: bytes = b"") -> str:
    resp = http.post(
        f"/v1/functions/{function}/invocations",
        content=payload,
        headers={"X-Invocation-Type": "Async"},
    )
    assert resp.status_code == 202, resp.text
    task_id: str = resp.json()["task_id"]
    return task_id


def test_non_loopback_address_without_keys_refuses_to_start(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "asyncfn", "serve", "--host", "0.0.0.0"]
    argv += ["--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "refusing to listen on 0.0.0.0" in done.stderr
    assert "ASYNCFN_ADMIN_KEY" in done.stderr


def test_auth_is_off_on_loopback_without_keys_and_management_needs_an_admin_key(
    http: httpx.Client,
) -> None:
    assert http.get("/v1/functions").status_code == 200
    refused = http.post("/v1/tenants", json={"name": "acme"})
    assert refused.status_code == 403
    assert "ASYNCFN_ADMIN_KEY" in refused.json()["error"]["message"]


def test_credentials_are_required_and_checked(secured: Server) -> None:
    with httpx.Client(base_url=secured.url, timeout=30) as anon:
        missing = anon.get("/v1/functions")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert anon.get("/v1/functions", headers=bearer("afk_nope_nope")).status_code == 401
        basic = anon.get("/v1/functions", headers={"Authorization": "Basic eDp5"})
        assert basic.status_code == 401
        assert anon.get("/healthz").status_code == 200
        assert anon.get("/").status_code == 200
        assert anon.get("/openapi.json").status_code == 200
        assert anon.get("/metrics").status_code == 401


def test_tenants_are_isolated_and_keys_revocable(secured: Server) -> None:
    with (
        httpx.Client(base_url=secured.url, timeout=30, headers=bearer(ADMIN)) as admin,
        httpx.Client(base_url=secured.url, timeout=30) as base,
    ):
        acme_key, zeta_key = tenant_with_key(admin, "acme"), tenant_with_key(admin, "zeta")
        assert admin.post("/v1/tenants", json={"name": "acme"}).status_code == 409
        listed = admin.get("/v1/keys", params={"tenant": "acme"}).json()["items"]
        assert [k["name"] for k in listed] == ["acme ci"]
        assert all("key" not in k and "hash" not in k for k in listed)
        assert admin.get("/metrics").status_code == 200

        acme = httpx.Client(base_url=secured.url, timeout=30, headers=bearer(acme_key))
        zeta = httpx.Client(base_url=secured.url, timeout=30, headers=bearer(zeta_key))
        with acme, zeta:
            assert acme.get("/v1/tenants").status_code == 403
            assert acme.get("/metrics").status_code == 403
            deploy(acme, "resize", "def handler(e, c):\n    return 'acme'\n")
            task_id = invoke(acme, "resize", b"secret payload")
            assert wait_terminal(acme, task_id)["result"] == "acme"
            ok = acme.put("/v1/schedules/nightly", json={"function": "resize", "every_s": 3600})
            assert ok.status_code == 201, ok.text

            for path in (
                "/v1/functions/resize",
                "/v1/functions/resize/stats",
                f"/v1/tasks/{task_id}",
                f"/v1/tasks/{task_id}/logs",
                "/v1/schedules/nightly",
            ):
                answer = zeta.get(path)
                assert answer.status_code == 404, (path, answer.text)
            assert zeta.post(f"/v1/tasks/{task_id}:stop").status_code == 404
            assert zeta.post(f"/v1/tasks/{task_id}:rerun").status_code == 404
            assert (
                zeta.post(
                    "/v1/functions/resize/invocations", headers={"X-Invocation-Type": "Async"}
                ).status_code
                == 404
            )
            assert zeta.get("/v1/tasks").json()["items"] == []
            assert zeta.get("/v1/functions").json()["items"] == []
            # the same name in another tenant is another function
            deploy(zeta, "resize", "def handler(e, c):\n    return 'zeta'\n")
            assert wait_terminal(zeta, invoke(zeta, "resize"))["result"] == "zeta"
            # the admin may act in a tenant it names
            as_acme = admin.get(f"/v1/tasks/{task_id}", headers={"X-Asyncfn-Tenant": "acme"})
            assert as_acme.status_code == 200

            key_id = listed[0]["id"]
            assert admin.delete(f"/v1/keys/{key_id}").status_code == 204
            assert acme.get("/v1/functions").status_code == 401
            assert base.get("/v1/functions", headers=bearer(zeta_key)).status_code == 200


PARENT = """\
def handler(event, context):
    child = context.client.invoke_async("child", b"from the parent")
    return {"child": child.task_id, "token": context._token}
"""


def test_a_handler_calls_back_with_a_task_token_of_its_tenant(secured: Server) -> None:
    with httpx.Client(base_url=secured.url, timeout=30, headers=bearer(ADMIN)) as admin:
        acme_key, zeta_key = tenant_with_key(admin, "acme"), tenant_with_key(admin, "zeta")
    acme = httpx.Client(base_url=secured.url, timeout=30, headers=bearer(acme_key))
    zeta = httpx.Client(base_url=secured.url, timeout=30, headers=bearer(zeta_key))
    with acme, zeta:
        deploy(acme, "parent", PARENT)
        deploy(acme, "child", "def handler(e, c):\n    return e.decode()\n")
        parent = wait_terminal(acme, invoke(acme, "parent"))
        assert parent["status"] == "Succeeded", parent["error"]
        result: dict[str, Any] = parent["result"]
        assert result["token"].startswith("aft_") and result["token"] != acme_key
        child = wait_terminal(acme, result["child"])
        assert child["result"] == "from the parent"
        assert zeta.get(f"/v1/tasks/{result['child']}").status_code == 404
        # the parent has ended: its token no longer opens anything
        deadline = time.monotonic() + 5
        while True:
            late = httpx.get(f"{secured.url}/v1/functions", headers=bearer(result["token"]))
            if late.status_code == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert late.status_code == 401
        forged = result["token"][:-4] + ("AAAA" if not result["token"].endswith("AAAA") else "BBBB")
        assert httpx.get(f"{secured.url}/v1/functions", headers=bearer(forged)).status_code == 401
