"""Code bundles: zips checked on upload (`validate_zip`), unpacked once per sha256 into a cache
shared by pools (`BundleCache`), and made deterministically from a folder (`zip_directory`)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import shutil
import stat
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from asyncfn.domain.errors import InvalidInput

MAX_UNPACKED_BYTES = 1 << 30
MAX_ENTRIES = 10_000
SKIPPED_NAMES = frozenset({"__pycache__", ".git", ".venv"})
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_COPY_CHUNK = 1 << 20


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidInput(f"code is not a zip file ({exc})", field="code") from None


def _entry_parts(name: str) -> list[str]:
    """An entry's path parts; refuses names that would land outside the folder (zip slip)."""
    parts = [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]
    if name.startswith(("/", "\\")) or _DRIVE_RE.match(name) or "\x00" in name or ".." in parts:
        raise InvalidInput(f"code zip entry {name!r} points outside its folder", field="code")
    return parts


def _checked_entries(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise InvalidInput(
            f"code zip has {len(entries)} entries; at most {MAX_ENTRIES} are allowed", field="code"
        )
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > MAX_UNPACKED_BYTES:
        raise InvalidInput(
            f"code zip unpacks to {unpacked} bytes; at most {MAX_UNPACKED_BYTES} (1 GiB)",
            field="code",
        )
    for entry in entries:
        _entry_parts(entry.filename)
    return entries


def validate_zip(data: bytes) -> None:
    """Raise InvalidInput unless `data` is a zip that is safe to unpack: no entry escapes its
    folder, at most 10 000 entries and 1 GiB unpacked."""
    with _open_zip(data) as archive:
        _checked_entries(archive)


def _unpack(data: bytes, into: Path) -> None:
    with _open_zip(data) as archive:
        for entry in _checked_entries(archive):
            parts = _entry_parts(entry.filename)
            if not parts:
                continue
            dest = into.joinpath(*parts)
            if entry.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(entry) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, _COPY_CHUNK)
            if (entry.external_attr >> 16) & 0o111:
                dest.chmod(0o755)


class BundleCache:
    """Unpacked code by sha256 under `root`: each bundle is fetched, verified and unpacked once
    (into a temporary folder renamed into place, so a reader never sees half of one)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, sha256: str, fetch: Callable[[], Awaitable[bytes]]) -> Path:
        """The folder holding bundle `sha256`, fetching and unpacking it the first time."""
        if not _SHA256_RE.match(sha256):
            raise InvalidInput(f"{sha256!r} is not a sha256 in hex", field="code_sha256")
        target = self.root / sha256
        if target.is_dir():
            return target
        lock = self._locks.setdefault(sha256, asyncio.Lock())
        async with lock:
            if not target.is_dir():
                data = await fetch()
                digest = hashlib.sha256(data).hexdigest()
                if digest != sha256:
                    raise InvalidInput(
                        f"code bundle has sha256 {digest}, expected {sha256}", field="code"
                    )
                await asyncio.to_thread(self._install, data, target)
        self._locks.pop(sha256, None)
        return target

    def _install(self, data: bytes, target: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".unpacking-{target.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            try:
                _unpack(data, staging)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InvalidInput(f"code zip cannot be unpacked ({exc})", field="code") from None
            try:
                staging.rename(target)
            except OSError:
                if not target.is_dir():  # else another process unpacked it first: use theirs
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _files(root: Path) -> list[tuple[str, Path]]:
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_NAMES]
        for name in names:
            path = Path(folder, name)
            if path.is_file():
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def zip_directory(path: Path) -> bytes:
    """A folder as a zip, byte-for-byte the same for the same files: entries sorted, fixed
    timestamps, modes 644/755, and no __pycache__, .git or .venv."""
    if not path.is_dir():
        raise InvalidInput(f"{path} is not a folder", field="code")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, file in _files(path):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured everywhere
            mode = 0o755 if file.stat().st_mode & 0o111 else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, file.read_bytes())
    return buffer.getvalue()
