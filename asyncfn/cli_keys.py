"""`asyncfn deploy --concurrency KEY=LIMIT[:STRATEGY]` (repeatable): the flags' text as the
API's `concurrency` list. A key may hold colons (`header:X-Team`), so the limit and strategy
are read from the right of the last `=`. A bare number keeps the flag's first meaning: the
tasks one instance runs (`instance_concurrency`)."""

from __future__ import annotations

from typing import Any

import typer

STRATEGIES = ("queue", "cancel_newest", "cancel_oldest")


def concurrency_flags(items: list[str]) -> tuple[int | None, list[dict[str, Any]]]:
    """`["4", "/customer_id=2", "tenant=5:cancel_oldest"]` → (4, [{"key": "/customer_id",
    "limit": 2}, {"key": "tenant", "limit": 5, "strategy": "cancel_oldest"}])."""
    per_instance: int | None = None
    limits: list[dict[str, Any]] = []
    for item in items:
        if item.strip().isdigit():
            per_instance = int(item)
        else:
            limits.append(concurrency_limit(item))
    return per_instance, limits


def concurrency_limit(text: str) -> dict[str, Any]:
    key, sep, rest = text.rpartition("=")
    number, _, strategy = rest.partition(":")
    if not sep or not key or not number.strip().isdigit():
        raise typer.BadParameter(
            f"{text!r} is not KEY=LIMIT[:STRATEGY] (or a number of tasks per instance)",
            param_hint="--concurrency",
        )
    limit: dict[str, Any] = {"key": key, "limit": int(number)}
    if strategy:
        if strategy not in STRATEGIES:
            raise typer.BadParameter(
                f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}",
                param_hint="--concurrency",
            )
        limit["strategy"] = strategy
    return limit
