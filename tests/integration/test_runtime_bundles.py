"""Code bundles: unpacked once per sha256, refused when unsafe, zipped deterministically."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import zipfile

import pytest

from asyncfn.domain.errors import InvalidInput
from asyncfn.runtime.bundles import BundleCache, validate_zip, zip_directory


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_ensure_unpacks_a_bundle_once_and_keeps_the_exec_bit(tmp_path):
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (source / "pkg" / "__init__.py").write_text("")
    (source / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (source / "run.sh").chmod(0o755)
    data = zip_directory(source)
    fetches = 0

    async def fetch() -> bytes:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.01)
        return data

    cache = BundleCache(tmp_path / "bundles")
    paths = await asyncio.gather(*(cache.ensure(sha(data), fetch) for _ in range(3)))
    again = await cache.ensure(sha(data), fetch)
    assert fetches == 1
    assert set(paths) == {again} == {tmp_path / "bundles" / sha(data)}
    assert (again / "main.py").read_text().startswith("def handler")
    assert (again / "pkg" / "__init__.py").exists()
    assert os.access(again / "run.sh", os.X_OK)
    assert not os.access(again / "main.py", os.X_OK)
    assert sorted(p.name for p in (tmp_path / "bundles").iterdir()) == [sha(data)]


async def test_ensure_refuses_bytes_that_do_not_match_the_sha256(tmp_path):
    data = make_zip({"a.py": b""})

    async def fetch() -> bytes:
        return data + b"tampered"

    with pytest.raises(InvalidInput, match="sha256"):
        await BundleCache(tmp_path).ensure(sha(data), fetch)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"../evil.py": b"x"}, "outside"),
        ({"ok/../../evil.py": b"x"}, "outside"),
        ({"/etc/evil": b"x"}, "outside"),
        ({"..\\evil.py": b"x"}, "outside"),
        ({"C:/evil.py": b"x"}, "outside"),
    ],
)
async def test_zip_slip_entries_are_refused(tmp_path, entries, message):
    data = make_zip(entries)
    with pytest.raises(InvalidInput, match=message):
        validate_zip(data)

    async def fetch() -> bytes:
        return data

    with pytest.raises(InvalidInput, match=message):
        await BundleCache(tmp_path / "bundles").ensure(sha(data), fetch)
    assert not (tmp_path / "evil.py").exists()
    assert [p.name for p in (tmp_path / "bundles").iterdir()] == []


def test_not_a_zip_is_refused():
    with pytest.raises(InvalidInput, match="not a zip"):
        validate_zip(b"this is not a zip file at all")
    with pytest.raises(InvalidInput, match="not a zip"):
        validate_zip(make_zip({"a": b"1"})[:-30])


def test_too_many_entries_are_refused():
    with pytest.raises(InvalidInput, match="10000"):
        validate_zip(make_zip({f"f{i}": b"" for i in range(10_001)}))


def test_a_zip_bomb_is_refused():
    buffer = io.BytesIO()
    zeros = bytes(1 << 24)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("bomb", "w", force_zip64=True) as bomb,
    ):
        for _ in range(65):  # 1 GiB + 16 MiB of zeros: about 4.5 MB zipped
            bomb.write(zeros)
    with pytest.raises(InvalidInput, match="1 GiB"):
        validate_zip(buffer.getvalue())


def test_zip_directory_is_deterministic_and_skips_caches(tmp_path):
    source = tmp_path / "src"
    for folder in ("b", "a", "__pycache__", ".git", "a/.venv"):
        (source / folder).mkdir(parents=True)
    for name in (
        "b/x.py",
        "a/y.py",
        "z.py",
        "__pycache__/z.cpython-311.pyc",
        ".git/HEAD",
        "a/.venv/v",
    ):
        (source / name).write_text(name)
    first = zip_directory(source)
    os.utime(source / "z.py", (1, 1))
    assert zip_directory(source) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist() == ["a/y.py", "b/x.py", "z.py"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    validate_zip(first)
