"""Settings of a node, read from flags and `ASYNCFN_*` variables once at the edge, passed down."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from asyncfn.domain import limits


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
    deploy: list[Path] = Field(default_factory=list, description="folders of functions to deploy")
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
    access_log: bool = False
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        "text", description="the node's own logs: text, or one JSON object per line"
    )

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{(self.data_dir / 'asyncfn.db').resolve()}"
