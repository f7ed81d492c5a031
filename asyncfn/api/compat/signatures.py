"""The cloud SDKs' own request signatures → the caller: AWS Signature Version 4 (boto3) and
Function Compute's ACS3-HMAC-SHA256 (alibabacloud SDKs), checked against a tenant's signing key.

Both are recomputed from the request as received: method, path, query, the signed headers and
the body's SHA-256. The signing time must be within ±`SKEW_S` of the node's clock. A replayed FC
request is refused by its `x-acs-signature-nonce`, remembered for the skew window in a bounded
in-memory cache per node (`NonceCache`); so a replay sent to another node of a cluster is not
caught. SigV4 carries no nonce: two identical boto3 calls in the same second sign identically,
so, as on AWS, a SigV4 signature is accepted again within the window.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import parse_qsl, quote

from starlette.types import Scope

from asyncfn.api.auth import OPEN, Principal
from asyncfn.api.compat.errors import AUTH_REASON
from asyncfn.domain.errors import Unauthorized

SKEW_S = 15 * 60
NONCES_MAX = 100_000
SIGV4 = "AWS4-HMAC-SHA256"
ACS3 = "ACS3-HMAC-SHA256"


class SigningKeys(Protocol):
    @property
    def enabled(self) -> bool:
        """Whether requests need a credential (auth on)."""

    async def signing_secret(self, key_id: str) -> tuple[str, str] | None:
        """(tenant, secret) of an active signing key, or None."""


@dataclass(frozen=True, slots=True)
class Signed:
    """One request's signature as parsed: what to recompute and compare."""

    key_id: str
    signed_headers: list[str]
    signature: str
    at: float
    nonce: str | None
    expected: Callable[[str], str]
    """The signature the request should carry, given the signing key's secret."""


def refused(reason: str, message: str) -> Unauthorized:
    return Unauthorized(message, **{AUTH_REASON: reason})


class NonceCache:
    """Nonces seen within the skew window, oldest first; bounded (the oldest go first when
    full, which only shortens how long a flood of requests is remembered)."""

    def __init__(self, limit: int = NONCES_MAX) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._limit = limit

    def first_use(self, nonce: str, now: float) -> bool:
        while self._seen:
            oldest, until = next(iter(self._seen.items()))
            if until > now and len(self._seen) < self._limit:
                break
            del self._seen[oldest]
        if nonce in self._seen:
            return False
        self._seen[nonce] = now + 2 * SKEW_S
        return True


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope.get("headers") or []:
        found.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


def _params(header: str) -> dict[str, str]:
    """`Credential=…, SignedHeaders=…, Signature=…` (commas, optional spaces) as a dict."""
    params: dict[str, str] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        params[key] = value
    return params


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"])
    return path.split("?", 1)[0]


def _sigv4(scope: Scope, headers: dict[str, list[str]], auth: str, body: bytes) -> Signed:
    params = _params(auth[len(SIGV4) :])
    credential = params.get("Credential", "").split("/")
    if len(credential) != 5 or credential[4] != "aws4_request":
        raise refused("bad_signature", "the SigV4 Credential is not key/date/region/service/…")
    key_id, day, region, service, _ = credential
    stamp = (headers.get("x-amz-date") or [""])[0]
    try:
        at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise refused("bad_signature", "X-Amz-Date is missing or not YYYYMMDDTHHMMSSZ") from None
    signed = params.get("SignedHeaders", "").split(";")
    pairs = sorted(
        tuple(p.partition("=")[::2])
        for p in scope.get("query_string", b"").decode().split("&")
        if p
    )
    canonical = "\n".join(
        [
            scope["method"],
            quote(_raw_path(scope), safe="/~"),
            "&".join(f"{k}={v}" for k, v in pairs),
            "".join(
                f"{h}:{','.join(' '.join(v.split()) for v in headers.get(h, []))}\n" for h in signed
            ),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope_text = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([SIGV4, stamp, scope_text, hashlib.sha256(canonical.encode()).hexdigest()])

    def derive(secret: str) -> str:
        key = f"AWS4{secret}".encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()

    return Signed(key_id, signed, params.get("Signature", ""), at, None, derive)


def _acs3(scope: Scope, headers: dict[str, list[str]], auth: str, body: bytes) -> Signed:
    params = _params(auth[len(ACS3) :])
    key_id = params.get("Credential", "")
    signed = [h for h in params.get("SignedHeaders", "").split(";") if h]
    for needed in ("x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"):
        if needed not in signed:
            raise refused("bad_signature", f"the signature must cover {needed}")
    if headers["x-acs-content-sha256"][0] != hashlib.sha256(body).hexdigest():
        raise refused("bad_signature", "x-acs-content-sha256 is not the body's SHA-256")
    try:
        at = datetime.strptime(headers["x-acs-date"][0], "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise refused("bad_signature", "x-acs-date is not YYYY-MM-DDTHH:MM:SSZ") from None
    query = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
    canonical = "\n".join(
        [
            scope["method"],
            _raw_path(scope) or "/",
            "&".join(f"{k}={quote(query[k], safe='~')}" for k in sorted(query)),
            "".join(
                f"{h}:{','.join(sorted(v.strip() for v in headers.get(h, [])))}\n" for h in signed
            ),
            ";".join(signed),
            headers["x-acs-content-sha256"][0],
        ]
    )
    to_sign = f"{ACS3}\n{hashlib.sha256(canonical.encode()).hexdigest()}"

    def sign(secret: str) -> str:
        return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()

    nonce = headers["x-acs-signature-nonce"][0]
    return Signed(
        key_id, signed, params.get("Signature", ""), at.replace(tzinfo=UTC).timestamp(), nonce, sign
    )


def parse(scope: Scope, body: bytes) -> Signed | None:
    """The request's signature, or None when it carries no Authorization header."""
    headers = _headers(scope)
    auth = (headers.get("authorization") or [""])[0].strip()
    if not auth:
        return None
    if auth.startswith(SIGV4 + " "):
        return _sigv4(scope, headers, auth, body)
    if auth.startswith(ACS3 + " "):
        missing = [
            h
            for h in ("x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")
            if h not in headers
        ]
        if missing:
            raise refused("bad_signature", f"missing header {missing[0]}")
        return _acs3(scope, headers, auth, body)
    raise refused("bad_signature", f"the Authorization header is neither {SIGV4} nor {ACS3}")


class SignatureAuth:
    """The caller of a compat request: the tenant of the signing key that signed it."""

    def __init__(self, keys: SigningKeys, clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._clock = clock
        self._nonces = NonceCache()

    async def principal(self, scope: Scope, body: bytes) -> Principal:
        if not self._keys.enabled:
            return OPEN  # auth off (loopback, no keys): signatures are not required
        signed = parse(scope, body)
        if signed is None:
            raise refused("missing", "this node needs a signed request (SigV4 or ACS3-HMAC-SHA256)")
        now = self._clock()
        if abs(now - signed.at) > SKEW_S:
            raise refused("skew", "the request's signing time is more than 15 minutes off")
        found = await self._keys.signing_secret(signed.key_id)
        if found is None:
            raise refused("unknown_key", "the access key id is not valid (unknown or revoked)")
        tenant, secret = found
        if not hmac.compare_digest(signed.expected(secret), signed.signature):
            raise refused("bad_signature", "the request signature does not match")
        if signed.nonce is not None and not self._nonces.first_use(signed.nonce, now):
            raise refused("replay", "the signature nonce was used already")
        return Principal(tenant, "key")
