"""Tenants and their API keys as pure data: a key's shape (`afk_` + id + secret), its stored
form (a SHA-256 of the whole key: keys are random, so a fast hash is as good as a slow one), and
the checks of names. Keys are shown once, when made; only their hash is kept."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from asyncfn.domain import limits
from asyncfn.domain.errors import InvalidInput

KEY_PREFIX = "afk_"
KEY_ID_CHARS = 12
"""An API key is `afk_<id>_<secret>`; the id (public, listed) names it for revocation."""
KEY_NAME_MAX = 100


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant and its quotas (None: unlimited)."""

    name: str
    created_at: float
    max_running: int | None = None
    """Running tasks of the tenant across the cluster."""
    submit_rate: float | None = None
    """Submissions per second (a token bucket of `submit_burst`); over it the API answers 429."""
    submit_burst: int | None = None
    """The bucket's size; None: one second's worth, at least 1."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A tenant's API key as stored: never the key itself, only its hash."""

    id: str
    tenant: str
    hash: str
    name: str | None
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A tenant's signing key for the cloud APIs (SigV4, ACS3-HMAC-SHA256): `id` is the access
    key id; the secret is kept sealed (encrypted under the node's signing-key secret)."""

    id: str
    tenant: str
    secret_sealed: bytes
    name: str | None
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def check_tenant_name(name: str) -> None:
    if not limits.NAME_RE.match(name):
        raise InvalidInput(
            "a tenant name is 1 to 64 letters, digits, '-' or '_', starting with a letter",
            field="name",
        )


def check_key_name(name: str | None) -> None:
    if name is not None and not (0 < len(name) <= KEY_NAME_MAX and name.isprintable()):
        raise InvalidInput(f"a key name is 1 to {KEY_NAME_MAX} printable characters", field="name")


def key_hash(key: str) -> str:
    """What is stored of `key` and looked up when it is presented."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def make_key(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id}_{secret}"


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two credentials."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())
