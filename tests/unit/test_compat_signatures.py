"""compat.signatures against requests signed by the Alibaba SDK's own signer: a good signature
names the key's tenant, a replayed nonce and a stale date are refused, and with auth off nothing
is required."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from alibabacloud_tea_openapi.utils import Utils
from starlette.types import Scope

from asyncfn.api.auth import OPEN
from asyncfn.api.compat.errors import AUTH_REASON
from asyncfn.api.compat.signatures import SignatureAuth
from asyncfn.domain.errors import Unauthorized

NOW = 1_800_000_000.0
SECRET = "the-secret"


class Keys:
    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def signing_secret(self, key_id: str) -> tuple[str, str] | None:
        return ("acme", SECRET) if key_id == "AFSK1" else None


def signed_scope(nonce: str, at: float = NOW, body: bytes = b"hi") -> Scope:
    digest = hashlib.sha256(body).hexdigest()
    headers = {
        "host": "127.0.0.1:8400",
        "x-acs-date": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": digest,
    }
    request = SimpleNamespace(
        method="POST",
        pathname="/2023-03-30/functions/f/invocations",
        query={"qualifier": "LATEST"},
        headers=dict(headers),
    )
    headers["authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", digest, "AFSK1", SECRET
    )
    return {
        "type": "http",
        "method": "POST",
        "path": request.pathname,
        "raw_path": request.pathname.encode(),
        "query_string": b"qualifier=LATEST",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }


async def _reason(auth: SignatureAuth, scope: Scope, body: bytes = b"hi") -> str:
    with pytest.raises(Unauthorized) as caught:
        await auth.principal(scope, body)
    return str(caught.value.extra[AUTH_REASON])


async def test_a_good_signature_names_the_tenant_and_its_nonce_is_used_once() -> None:
    auth = SignatureAuth(Keys(), clock=lambda: NOW)
    scope = signed_scope("n1")
    principal = await auth.principal(scope, b"hi")
    assert principal.tenant == "acme"
    assert await _reason(auth, scope) == "replay"
    assert (await auth.principal(signed_scope("n2"), b"hi")).tenant == "acme"


async def test_a_changed_body_or_a_stale_date_is_refused() -> None:
    auth = SignatureAuth(Keys(), clock=lambda: NOW)
    assert await _reason(auth, signed_scope("n3"), b"tampered") == "bad_signature"
    assert await _reason(auth, signed_scope("n4", at=NOW - 16 * 60)) == "skew"
    assert (await auth.principal(signed_scope("n5", at=NOW - 14 * 60), b"hi")).tenant == "acme"


async def test_with_auth_off_a_signature_is_not_required() -> None:
    auth = SignatureAuth(Keys(enabled=False), clock=lambda: NOW)
    unsigned: Scope = {"type": "http", "method": "GET", "path": "/2023-03-30/x", "headers": []}
    assert await auth.principal(unsigned, b"") is OPEN
