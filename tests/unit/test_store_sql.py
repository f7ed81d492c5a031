"""The store's SQL machinery: named statements, numbered migrations, store URLs."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import textwrap
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import pytest

from asyncfn.domain.states import TaskStatus, sources_of
from asyncfn.store import StoreUrlError, open_store
from asyncfn.store.migrate import (
    MigrationError,
    discover,
    migrate_sqlite,
    split_sqlite_script,
)
from asyncfn.store.postgres.store import PostgresStore
from asyncfn.store.sql import QueryFileError, load_queries, parse_queries
from asyncfn.store.sqlite.store import SqliteStore

pytestmark = pytest.mark.timeout(20)

# -- named statements --------------------------------------------------------------------------


def test_named_statements_run_to_the_next_header() -> None:
    text = """
    -- The file's own comment, before any statement.

    -- name: get_task
    -- Reads one task.
    SELECT * FROM tasks
    WHERE id = :id;

    -- name: count_tasks
    SELECT count(*) FROM tasks;

    -- a comment heading the next section
    """

    queries = parse_queries(textwrap.dedent(text))

    assert queries == {
        "get_task": "-- Reads one task.\nSELECT * FROM tasks\nWHERE id = :id",
        "count_tasks": "SELECT count(*) FROM tasks",
    }


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "defined twice"),
        ("SELECT 0;\n-- name: a\nSELECT 1;\n", "before the first"),
        ("-- name: a\n-- only a comment\n-- name: b\nSELECT 1;\n", "'a' is empty"),
        ("-- name: Bad-Name\nSELECT 1;\n", "bad statement name"),
    ],
)
def test_malformed_query_files_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(QueryFileError, match=complaint):
        parse_queries(text, source="queries.sql")


def test_the_sqlite_queries_load_and_each_prepares_against_the_schema(tmp_path: Path) -> None:
    queries = load_queries("asyncfn.store.sqlite")
    with contextlib.closing(sqlite3.connect(tmp_path / "db", isolation_level=None)) as conn:
        migrate_sqlite(conn, discover(files("asyncfn.store.sqlite") / "migrations"), 0.0)
        for name, sql in queries.items():
            # EXPLAIN prepares without running: a typo in any statement fails here.
            params = dict.fromkeys(re.findall(r":([a-z_][a-z0-9_]*)", sql))
            assert conn.execute(f"EXPLAIN {sql}", params).fetchall(), name


def test_the_schema_check_lists_every_task_status() -> None:
    init = (files("asyncfn.store.sqlite") / "migrations" / "0001_init.sql").read_text()

    assert all(f"'{status.value}'" in init for status in TaskStatus)


# -- migrations --------------------------------------------------------------------------------


def write_migrations(folder: Path, **scripts: str) -> Path:
    folder.mkdir(exist_ok=True)
    for filename, sql in scripts.items():
        (folder / f"{filename}.sql").write_text(sql)
    return folder


def applied_versions(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    return conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()


@pytest.fixture
def db(tmp_path: Path) -> Callable[[], contextlib.closing[sqlite3.Connection]]:
    return lambda: contextlib.closing(sqlite3.connect(tmp_path / "m.db", isolation_level=None))


def test_migrations_apply_once_in_order(
    tmp_path: Path, db: Callable[[], contextlib.closing[sqlite3.Connection]]
) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        **{
            "0002_add_b": "ALTER TABLE a ADD COLUMN b TEXT;",
            "0001_create_a": "-- first\nCREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);",
        },
    )
    migrations = discover(folder)

    with db() as conn:
        assert [m.version for m in migrate_sqlite(conn, migrations, 1.0)] == [1, 2]
        assert migrate_sqlite(conn, migrations, 2.0) == []
        assert applied_versions(conn) == [(1, "create_a"), (2, "add_b")]
        assert conn.execute("SELECT x, b FROM a").fetchall() == [(1, None)]
        checksums = conn.execute("SELECT checksum FROM schema_migrations").fetchall()
        assert [c for (c,) in checksums] == [m.checksum for m in migrations]


def test_a_new_migration_is_applied_on_the_next_open(
    tmp_path: Path, db: Callable[[], contextlib.closing[sqlite3.Connection]]
) -> None:
    folder = write_migrations(tmp_path / "migrations", **{"0001_a": "CREATE TABLE a (x);"})
    with db() as conn:
        migrate_sqlite(conn, discover(folder), 1.0)
    write_migrations(folder, **{"0002_b": "CREATE TABLE b (y);"})

    with db() as conn:
        assert [m.name for m in migrate_sqlite(conn, discover(folder), 2.0)] == ["b"]


def test_editing_an_applied_migration_is_detected(
    tmp_path: Path, db: Callable[[], contextlib.closing[sqlite3.Connection]]
) -> None:
    folder = write_migrations(tmp_path / "migrations", **{"0001_a": "CREATE TABLE a (x);"})
    with db() as conn:
        migrate_sqlite(conn, discover(folder), 1.0)
    write_migrations(folder, **{"0001_a": "CREATE TABLE a (x, y);"})

    with db() as conn, pytest.raises(MigrationError, match=r"0001_a\.sql changed after"):
        migrate_sqlite(conn, discover(folder), 2.0)


def test_a_database_newer_than_the_code_is_refused(
    tmp_path: Path, db: Callable[[], contextlib.closing[sqlite3.Connection]]
) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        **{"0001_a": "CREATE TABLE a (x);", "0002_b": "CREATE TABLE b (y);"},
    )
    with db() as conn:
        migrate_sqlite(conn, discover(folder), 1.0)
    (folder / "0002_b.sql").unlink()

    with db() as conn, pytest.raises(MigrationError, match="does not know"):
        migrate_sqlite(conn, discover(folder), 2.0)


def test_a_failing_migration_applies_nothing(
    tmp_path: Path, db: Callable[[], contextlib.closing[sqlite3.Connection]]
) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        **{"0001_a": "CREATE TABLE a (x);", "0002_b": "CREATE TABLE b (y);\nNOT SQL;"},
    )

    with db() as conn:
        with pytest.raises(sqlite3.OperationalError):
            migrate_sqlite(conn, discover(folder), 1.0)
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert tables == []


@pytest.mark.parametrize(
    ("names", "complaint"),
    [(["0001_a", "0003_c"], "expected version 0002"), (["0001_a", "1_b"], "NNNN_name")],
)
def test_migration_files_must_be_numbered_without_gaps(
    tmp_path: Path, names: list[str], complaint: str
) -> None:
    folder = write_migrations(tmp_path / "m", **dict.fromkeys(names, "SELECT 1;"))

    with pytest.raises(MigrationError, match=complaint):
        discover(folder)


def test_scripts_split_at_real_statement_ends() -> None:
    script = """CREATE TABLE t (x TEXT DEFAULT 'a;b'); -- a comment; with a semicolon
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c'; END;
    -- trailing comment"""

    statements = split_sqlite_script(script)

    assert len(statements) == 2
    assert statements[0] == "CREATE TABLE t (x TEXT DEFAULT 'a;b');"
    assert statements[1].endswith("SET x = 'c'; END;")
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        for statement in statements:
            conn.execute(statement)
    with pytest.raises(MigrationError, match="does not end"):
        split_sqlite_script("CREATE TABLE t (x);\nCREATE TABLE u (y)")


# -- store URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["sqlite:///data/asyncfn.db", "sqlite:////data/asyncfn.db"])
def test_open_store_reads_sqlite_urls(url: str) -> None:
    store = open_store(url)

    assert isinstance(store, SqliteStore)
    assert store.path == Path("/data/asyncfn.db")


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("sqlite:///:memory:", "absolute file path"),
        ("sqlite://host/x.db", "no host"),
        ("redis://localhost", "unknown store URL"),
    ],
)
def test_open_store_refuses_what_it_cannot_open(url: str, complaint: str) -> None:
    """(`open_store` builds the store without connecting: any refusal is the URL's.)"""
    with pytest.raises(StoreUrlError, match=complaint):
        open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://localhost/asyncfn",
        "postgres://u@127.0.0.1:5432/asyncfn",
        "postgresql+psycopg://localhost/asyncfn",
    ],
)
def test_postgresql_urls_open_the_postgres_store(url: str) -> None:
    assert isinstance(open_store(url), PostgresStore)


def test_the_expiry_guard_is_the_transition_tables() -> None:
    """`expire_tasks` spells its statuses out (so the partial index `tasks_expiry` applies);
    they must be exactly the statuses TRANSITIONS lets a task expire from."""
    sql = load_queries("asyncfn.store.sqlite")["expire_tasks"]
    (listed,) = re.findall(r"status IN \(([^)]*)\)", sql)

    assert {TaskStatus(s.strip(" '")) for s in listed.split(",")} == sources_of(TaskStatus.EXPIRED)
