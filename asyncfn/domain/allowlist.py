"""The webhook allow-list: which hosts (and ports) an http destination may point at, checked when
a function is saved and again when a delivery is made."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABELS_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


@dataclass(frozen=True, slots=True)
class HostRule:
    """One entry: `host`, `*.domain` (any name under it, not the domain itself), each with an
    optional `:port` (any port when absent)."""

    host: str
    wildcard: bool
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def parse_rule(entry: str) -> HostRule:
    """A rule from `example.com`, `*.example.com`, `example.com:8443`, `[::1]:8080`, `10.0.0.5`;
    ValueError naming the entry when it is none of these."""
    text = entry.strip().lower()
    port: int | None = None
    if text.startswith("["):  # an IPv6 literal, with or without a port
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"webhook allow-list entry {entry!r}: bad port")
            port = int(rest[1:])
        return _rule(entry, host, False, port, ipv6=True)
    host, colon, port_text = text.rpartition(":") if text.count(":") == 1 else ("", "", text)
    if not colon:
        host = text
    elif not port_text.isdigit():
        raise ValueError(f"webhook allow-list entry {entry!r}: bad port {port_text!r}")
    else:
        port = int(port_text)
    wildcard = host.startswith("*.")
    return _rule(entry, host[2:] if wildcard else host, wildcard, port)


def _rule(entry: str, host: str, wildcard: bool, port: int | None, ipv6: bool = False) -> HostRule:
    host = _normal_host(host)
    if port is not None and not 0 < port < 65_536:
        raise ValueError(f"webhook allow-list entry {entry!r}: port out of range")
    valid = bool(host) and (
        all(c in "0123456789abcdef:." for c in host) if ipv6 else bool(_LABELS_RE.match(host))
    )
    if not valid:
        raise ValueError(
            f"webhook allow-list entry {entry!r} is not a host name, '*.domain', or either"
            " with ':port'"
        )
    return HostRule(host, wildcard, port)


def url_allowed(url: str, allow_hosts: Sequence[str]) -> bool:
    """Whether `url` may receive deliveries: any URL when the list is empty, else one whose host
    (and port, explicit or the scheme's default) some entry matches."""
    if not allow_hosts:
        return True
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # a port that is no number or out of range
        return False
    host = _normal_host(parts.hostname or "")
    if not host or port is None:
        return False
    return any(parse_rule(entry).matches(host, port) for entry in allow_hosts)


def refused_destination(
    destinations: dict[str, dict[str, Any] | None], allow_hosts: Sequence[str]
) -> tuple[str, str] | None:
    """The first http destination (by key, e.g. `on_success`) whose URL the list refuses, as
    (field, message) with the field named as in the config (`async.on_success.url`)."""
    for key, config in destinations.items():
        if not config or config.get("type") != "http":
            continue
        url = str(config.get("url") or "")
        if not url_allowed(url, allow_hosts):
            return (
                f"async.{key}.url",
                f"{url} is not on this node's webhook allow-list ({', '.join(allow_hosts)})",
            )
    return None
