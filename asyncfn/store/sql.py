"""Named SQL statements: a `queries.sql` split at `-- name: x` headers into a read-only mapping.

Every store keeps its SQL in one such file, and the SQLite and PostgreSQL files use the same
names, so the two stores can be compared statement by statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources import files
from types import MappingProxyType

HEADER = re.compile(r"^--\s*name:\s*(?P<name>\S+)\s*$")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class QueryFileError(ValueError):
    """A queries file that cannot be read as named statements (the message says where)."""


def parse_queries(text: str, source: str = "<string>") -> dict[str, str]:
    """Split `text` at `-- name: x` header lines; each statement runs to the next header.

    Comment lines inside a statement stay in it; trailing comments, whitespace and `;` are
    dropped.
    Anything but blank and comment lines before the first header, a malformed or repeated
    name, and a header with no statement under it are errors.
    """
    statements: dict[str, str] = {}
    name: str | None = None
    first_line = 0
    body: list[str] = []

    def close() -> None:
        if name is None:
            return
        while body and not _has_code(body[-1]):  # comments heading the next section
            body.pop()
        sql = "\n".join(body).strip().rstrip(";").rstrip()
        if not _has_code(sql):
            raise QueryFileError(f"{source}:{first_line}: statement {name!r} is empty")
        statements[name] = sql

    for number, line in enumerate(text.splitlines(), start=1):
        header = HEADER.match(line.strip())
        if header is None:
            if name is None and _has_code(line):
                raise QueryFileError(f"{source}:{number}: SQL before the first '-- name:' header")
            body.append(line)
            continue
        close()
        name, first_line, body = header["name"], number, []
        if not NAME.match(name):
            raise QueryFileError(f"{source}:{number}: bad statement name {name!r}")
        if name in statements:
            raise QueryFileError(f"{source}:{number}: statement {name!r} is defined twice")
    close()
    return statements


def load_queries(package: str, resource: str = "queries.sql") -> Mapping[str, str]:
    """The named statements of `resource` in `package` (read with importlib.resources)."""
    text = files(package).joinpath(resource).read_text(encoding="utf-8")
    return MappingProxyType(parse_queries(text, source=f"{package}/{resource}"))


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())
