"""A task's key values (`TaskKeys`) as both stores keep them: the columns ckey1…ckey3,
debounce_key and throttle_key of the tasks table."""

from __future__ import annotations

from collections.abc import Sequence

from asyncfn.domain.models import TaskKeys

KEY_COLUMNS = ("ckey1", "ckey2", "ckey3", "debounce_key", "throttle_key")
CONCURRENCY_COLUMNS = KEY_COLUMNS[:3]


def key_columns(keys: TaskKeys | None) -> dict[str, str | None]:
    """The columns of one task (all NULL without keys)."""
    if keys is None:
        return dict.fromkeys(KEY_COLUMNS)
    concurrency = list(keys.concurrency) + [None] * (3 - len(keys.concurrency))
    return {
        **dict(zip(CONCURRENCY_COLUMNS, concurrency, strict=True)),
        "debounce_key": keys.debounce,
        "throttle_key": keys.throttle,
    }


def key_arrays(rows: Sequence[dict[str, str | None]]) -> dict[str, list[str | None]]:
    """Per column, the values of many tasks in order (PostgreSQL's unnest parameters)."""
    return {column: [row[column] for row in rows] for column in KEY_COLUMNS}


def keys_from_columns(values: Sequence[str | None]) -> TaskKeys | None:
    """The inverse of `key_columns`, from the five columns in KEY_COLUMNS order."""
    ckey1, ckey2, ckey3, debounce, throttle = values
    concurrency = tuple(k for k in (ckey1, ckey2, ckey3) if k is not None)
    if not concurrency and debounce is None and throttle is None:
        return None
    return TaskKeys(concurrency=concurrency, debounce=debounce, throttle=throttle)
