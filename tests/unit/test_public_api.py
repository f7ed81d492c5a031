"""The package's public surface is pinned: changing it is a deliberate act."""

import subprocess
import sys

import asyncfn


def test_all_is_pinned() -> None:
    assert sorted(asyncfn.__all__) == [
        "ApiError",
        "AsyncClient",
        "AsyncTaskHandle",
        "Client",
        "ConflictError",
        "Context",
        "NotFoundError",
        "RateLimited",
        "TaskFailed",
        "TaskHandle",
        "TaskTimeout",
    ]


def test_every_public_name_resolves() -> None:
    for name in asyncfn.__all__:
        assert getattr(asyncfn, name).__name__ == name


def test_importing_the_package_does_not_load_httpx() -> None:
    code = "import sys, asyncfn; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
