"""Fixtures of the unit suite: the fake API the client and CLI tests talk to over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.fakeapi import FakeApi


@pytest.fixture(name="api")
def api_fixture() -> Iterator[FakeApi]:
    """A started fake node, stopped after the test."""
    fake = FakeApi()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
