"""Settings of a node, read from flags and `ASYNCFN_*` variables once at the edge, passed down."""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import socket
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asyncfn.domain import limits
from asyncfn.domain.allowlist import parse_rule
from asyncfn.domain.placement import check_labels, parse_labels
from asyncfn.roles import Role


def inherited_env() -> dict[str, str]:
    """What instances inherit from the node's environment: PATH, HOME and LANG only."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}


class Settings(BaseSettings):
    """Everything a node is configured by; nothing else in the package reads the environment."""

    model_config = SettingsConfigDict(env_prefix="ASYNCFN_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8400, ge=0, le=65535)
    data_dir: Path = Path(".asyncfn")
    store: str | None = Field(None, description="store URL; default sqlite in data_dir")
    node_name: str = Field(default_factory=socket.gethostname)
    role: Role = Field(
        "all",
        description="all: API and tasks; api: the HTTP API only (needs PostgreSQL); worker:"
        " runs tasks, serves /healthz and /metrics only",
    )
    api_url: str | None = Field(
        None,
        description="the public URL of the API nodes, given to handlers' context.client;"
        " default: this node's own address (none on a worker)",
    )
    deploy: list[Path] = Field(default_factory=list, description="folders of functions to deploy")
    labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="placement labels: this node runs functions whose `requires` they satisfy;"
        " a JSON object or k=v,k=v",
    )
    lease_s: float = Field(30.0, gt=1)
    payload_max_bytes: int = Field(limits.PAYLOAD_MAX_BYTES_DEFAULT, gt=0)
    log_max_bytes_per_task: int = Field(limits.LOG_MAX_BYTES_PER_TASK_DEFAULT, gt=0)
    retention_days: float = Field(7.0, gt=0, description="how long ended tasks stay queryable")
    sync_timeout_s: float = Field(900.0, gt=0)
    group_commit: bool = Field(
        True, description="share one transaction among concurrent writes; off only to measure"
    )
    instance_env: dict[str, str] = Field(
        default_factory=inherited_env, description="the base environment of every instance"
    )
    delivery_backoff_base_s: float = Field(
        1.0, gt=0, description="first retry delay of a failed destination delivery (doubling)"
    )
    # -- auth
    admin_key: str | None = Field(
        None,
        min_length=16,
        repr=False,
        description="the key that manages tenants and keys; setting it turns auth on",
    )
    access_log: bool = False
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        "text", description="the node's own logs: text, or one JSON object per line"
    )
    # -- capacity (instances of every function on this node)
    max_instances: int = Field(
        64, ge=1, le=10_000, description="most instance processes this node runs at once"
    )
    memory_budget_mb: int | None = Field(
        None,
        ge=64,
        description="memory the node's instances may reserve (each its function's memory_mb);"
        " default 80% of the machine's",
    )
    idle_ttl_s: float = Field(
        60.0, gt=0, description="an idle instance above its function's min_instances goes after"
    )
    fork_server: bool = Field(
        True,
        description="fork instances from a per-function process with the code imported"
        " (millisecond cold starts); off: spawn each one",
    )
    # -- hardening (instances, webhooks)
    instance_max_open_files: int = Field(
        4096, ge=16, description="RLIMIT_NOFILE of instances (capped at the node's hard limit)"
    )
    instance_rlimit_as: bool = Field(
        False,
        description="also cap instances' address space (RLIMIT_AS) at a multiple of memory_mb;"
        " off by default, memory_mb is enforced on resident memory",
    )
    instance_user: str | None = Field(
        None, description="run instances as this user (name or uid; the node must be root)"
    )
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="hosts webhook destinations may use: host, *.domain, each with an optional"
        " :port; comma-separated or a JSON list; empty allows any host",
    )
    signing_key_secret: str | None = Field(
        None,
        min_length=16,
        repr=False,
        description="seals the secrets of signing keys (the cloud APIs' SigV4 / ACS3 access"
        " keys) at rest; signing keys cannot be made without it",
    )

    @field_validator("instance_user")
    @classmethod
    def _user_exists(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            entry = pwd.getpwuid(int(value)) if value.isdigit() else pwd.getpwnam(value)
        except KeyError:
            raise ValueError(f"instance_user {value!r}: no such user on this host") from None
        if os.geteuid() not in (0, entry.pw_uid):
            raise ValueError(
                f"instance_user {value!r}: running instances as another user needs a root node"
            )
        return value

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return (
                json.loads(text)
                if text.startswith("[")
                else [part.strip() for part in text.split(",") if part.strip()]
            )
        return value

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _host_rules(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_rule(entry)  # ValueError naming the entry
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _label_pairs(cls, value: object) -> object:
        return parse_labels(value)

    @field_validator("labels")
    @classmethod
    def _label_rules(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)

    @model_validator(mode="after")
    def _api_role_needs_shared_store(self) -> Settings:
        if self.role == "api" and urlsplit(self.store_url).scheme.lower() == "sqlite":
            raise ValueError(
                "role api needs a PostgreSQL store shared with worker nodes (ASYNCFN_STORE="
                "postgresql://…): on SQLite no node would run the tasks it accepts; use role"
                " all for a single node"
            )
        return self

    @property
    def loopback_only(self) -> bool:
        """True when the node listens on a loopback address only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{(self.data_dir / 'asyncfn.db').resolve()}"
