"""The first code an instance runs: it lowers its own resource limits, then runs the bootstrap in
this same interpreter, before any handler code is imported.

    python -m asyncfn.runtime.launch core=0,nofile=4096[,as=BYTES] BOOTSTRAP_ARGS...

Each limit is set as both soft and hard limit (never above the inherited hard limit), so the
handler cannot raise it again. Why here and not in the parent: see `process.spawn_instance`.
"""

from __future__ import annotations

import resource
import runpy
import sys

RLIMITS = {"core": resource.RLIMIT_CORE, "nofile": resource.RLIMIT_NOFILE, "as": resource.RLIMIT_AS}


def format_limits(limits: dict[str, int]) -> str:
    """`{"core": 0, "nofile": 4096}` → `core=0,nofile=4096` (the launcher's first argument)."""
    return ",".join(f"{name}={value}" for name, value in limits.items())


def parse_limits(text: str) -> dict[int, int]:
    """The launcher's first argument as {RLIMIT_*: value}; ValueError for anything else."""
    limits: dict[int, int] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in RLIMITS or not value.isdigit():
            raise ValueError(f"not a resource limit: {item!r} (expected e.g. nofile=4096)")
        limits[RLIMITS[name]] = int(value)
    return limits


def apply_limits(limits: dict[int, int]) -> None:
    """Set each limit as soft and hard limit, capped at the hard limit this process has."""
    for which, wanted in limits.items():
        _, hard = resource.getrlimit(which)
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(which, (value, value))


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    apply_limits(parse_limits(argv[0]))
    sys.argv = [sys.argv[0], *argv[1:]]
    runpy.run_module("asyncfn.runtime.bootstrap", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
