"""`asyncfn deploy --debounce KEY:WINDOW_S:MAX_WAIT_S` and `--throttle KEY:PER_S[:BURST]`: the
flags' text as the API's `debounce` and `throttle` objects. A key may hold colons
(`header:X-Customer`), so the numbers are read from the right."""

from __future__ import annotations

from typing import Any

import typer


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def debounce_body(text: str) -> dict[str, Any]:
    """`/doc_id:2:30` → {"key": "/doc_id", "window_s": 2.0, "max_wait_s": 30.0}."""
    parts = text.rsplit(":", 2)
    numbers = [_number(p) for p in parts[1:]]
    if len(parts) != 3 or not parts[0] or None in numbers:
        raise typer.BadParameter(
            f"{text!r} is not KEY:WINDOW_S:MAX_WAIT_S", param_hint="--debounce"
        )
    return {"key": parts[0], "window_s": numbers[0], "max_wait_s": numbers[1]}


def throttle_body(text: str) -> dict[str, Any]:
    """`tenant:5` → {"key": "tenant", "per_s": 5.0}; `header:X-Customer:5:10` also gives
    "burst": 10 (two trailing numbers, the last a whole one, are PER_S and BURST)."""
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[2].isdigit() and _number(parts[1]) is not None and parts[0]:
        return {"key": parts[0], "per_s": _number(parts[1]), "burst": int(parts[2])}
    key, _, rate = text.rpartition(":")
    per_s = _number(rate)
    if not key or per_s is None:
        raise typer.BadParameter(f"{text!r} is not KEY:PER_S[:BURST]", param_hint="--throttle")
    return {"key": key, "per_s": per_s}
