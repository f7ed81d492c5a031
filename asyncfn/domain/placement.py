"""Placement labels: a node's labels (`asyncfn serve --label gpu=1`), a function's `requires`,
whether one satisfies the other, and which live nodes can serve a function.

A function runs only on nodes whose labels hold every `requires` pair with the same value
(an empty `requires` runs anywhere). Nodes announce themselves in the store's `nodes` table
every `HEARTBEAT_S`; one not seen for `LIVE_WINDOW_S` no longer counts as live.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asyncfn.domain.records import rfc3339

Labels = dict[str, str]

LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$")
"""1 to 64 letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit."""
LABEL_VALUE_RE = re.compile(r"^[A-Za-z0-9._/:-]{0,128}$")
"""Up to 128 letters, digits, '.', '_', '/', ':' or '-' (empty allowed)."""
MAX_LABELS = 32

HEARTBEAT_S = 5.0
"""How often a node writes its row in the `nodes` table."""
LIVE_WINDOW_S = 3 * HEARTBEAT_S
"""A node seen within this many seconds is live."""


def check_labels(labels: Mapping[str, str], what: str = "label") -> Labels:
    """`labels` as a plain dict; ValueError naming the first bad key or value."""
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} {what}s")
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_RE.match(key):
            raise ValueError(
                f"{what} key {key!r}: 1 to 64 letters, digits, '.', '_', '/' or '-',"
                " starting and ending with a letter or digit"
            )
        if not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
            raise ValueError(
                f"{what} {key!r}: the value is up to 128 letters, digits, '.', '_', '/', ':' or '-'"
            )
    return dict(labels)


def parse_labels(given: object) -> object:
    """Labels as flags and variables give them: a JSON object, "k=v,k=v", or a list of "k=v"
    items; anything else is answered unchanged for the caller's validation to refuse."""
    if isinstance(given, str):
        text = given.strip()
        if text.startswith("{"):
            return json.loads(text)
        given = [part for part in text.split(",") if part.strip()]
    if isinstance(given, list | tuple):
        pairs: Labels = {}
        for item in given:
            key, sep, value = str(item).strip().partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not KEY=VALUE")
            pairs[key.strip()] = value.strip()
        return pairs
    return given


def satisfies(labels: Mapping[str, str], requires: Mapping[str, str]) -> bool:
    """True when `labels` hold every pair of `requires` (an empty `requires` always is)."""
    return all(labels.get(key) == value for key, value in requires.items())


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as the `nodes` table keeps it: its labels and when it was last seen."""

    name: str
    role: str
    labels: Labels = field(default_factory=dict)
    started_at: float = 0.0
    seen_at: float = 0.0

    @property
    def runs_tasks(self) -> bool:
        """Whether the node claims tasks (an `api` node serves the API only)."""
        return self.role != "api"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "labels": dict(self.labels),
            "started_at": rfc3339(self.started_at),
            "seen_at": rfc3339(self.seen_at),
        }


def placement(requires: Mapping[str, str], nodes: Iterable[NodeRecord]) -> dict[str, Any]:
    """`requires`, and the live nodes running tasks whose labels satisfy it (`nodes` are the
    live ones): `placeable` is False when there is none, so the function's tasks wait."""
    names = sorted(n.name for n in nodes if n.runs_tasks and satisfies(n.labels, requires))
    return {"requires": dict(requires), "placeable": bool(names), "nodes": names}
