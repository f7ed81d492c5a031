"""FunctionCatalog.reload / reload_all on a real SQLite store: a catalog catches up with changes
made through another catalog of the same store (another node), and its listeners hear only real
changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncfn.domain.models import FunctionSpec
from asyncfn.engine.catalog import FunctionCatalog, FunctionKey
from asyncfn.store import open_store
from asyncfn.store.base import Store

TENANT = "default"
KEY = (TENANT, "f")

Heard = list[tuple[FunctionKey, FunctionSpec | None]]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'catalog.db'}")
    await opened.open()
    yield opened
    await opened.close()


async def two_catalogs(store: Store) -> tuple[FunctionCatalog, FunctionCatalog, Heard]:
    """Catalogs of two nodes on one store; answers what the second one's listeners hear."""
    here, there = FunctionCatalog(store), FunctionCatalog(store)
    await here.start()
    await there.start()
    heard: Heard = []
    there.subscribe(lambda key, spec: heard.append((key, spec)))
    return here, there, heard


async def test_reload_applies_a_change_made_elsewhere_once(store: Store) -> None:
    here, there, heard = await two_catalogs(store)
    spec, _ = await here.put(FunctionSpec(name="f", handler="m:h"))
    assert there.get(*KEY) is None

    assert await there.reload(*KEY) == spec
    assert await there.reload(*KEY) == spec  # unchanged: nobody is told again

    assert there.get(*KEY) == spec
    assert heard == [(KEY, spec)]


async def test_reload_sees_code_pause_and_deletion(store: Store) -> None:
    here, there, heard = await two_catalogs(store)
    await here.put(FunctionSpec(name="f", handler="m:h"))
    await there.reload(*KEY)
    sha = await here.set_code(TENANT, "f", b"zip")
    await there.reload(*KEY)
    paused = await here.set_paused(TENANT, "f", True)
    await there.reload(*KEY)
    await here.delete(TENANT, "f")

    assert await there.reload(*KEY) is None

    assert [spec.code_sha256 if spec else None for _, spec in heard] == [None, sha, sha, None]
    assert heard[2] == (KEY, paused)
    assert there.get(*KEY) is None


async def test_reload_all_catches_up_with_additions_changes_and_deletions(store: Store) -> None:
    here, there, heard = await two_catalogs(store)
    await here.put(FunctionSpec(name="gone", handler="m:h"))
    await here.put(FunctionSpec(name="f", handler="m:h"))
    await there.reload_all()
    heard.clear()
    await here.delete(TENANT, "gone")
    changed = await here.set_paused(TENANT, "f", True)
    added, _ = await here.put(FunctionSpec(name="new", handler="m:h"))

    await there.reload_all()
    await there.reload_all()  # nothing left to apply

    assert sorted(heard, key=lambda item: item[0]) == [
        (KEY, changed),
        ((TENANT, "gone"), None),
        ((TENANT, "new"), added),
    ]
    assert {s.name for s in there.all()} == {"f", "new"}
