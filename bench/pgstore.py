"""The accept-path scenarios on a PostgreSQL store: `pg-submit` and `pg-batch` are `submit` and
`batch` with the server on a fresh database of `ASYNCFN_BENCH_PG` (see bench/cluster.py, whose
`cluster1` measures a PostgreSQL node's drain and submit→start latency)."""

from __future__ import annotations

import dataclasses

import psycopg

from bench import cluster
from bench.scenarios import Batch, Metric, Options, Scenario, Submit
from bench.server import FUNCTION, BenchServer, env_args


def untargeted(metrics: tuple[Metric, ...]) -> tuple[Metric, ...]:
    """The same figures without targets: issue #9 sets them for SQLite only."""
    return tuple(dataclasses.replace(m, target=None) for m in metrics)


class _OnPostgres:
    """Mixin: a fresh database per run (dropped when the harness exits, unless `--keep`)."""

    def skip_reason(self, options: Options) -> str | None:
        try:
            with psycopg.connect(cluster.admin_url(), connect_timeout=3):
                return None
        except psycopg.Error as exc:
            return f"no PostgreSQL at {cluster.PG_ENV} ({exc})"

    def server_args(self, options: Options) -> tuple[str, ...]:
        return env_args(ASYNCFN_STORE=cluster.create_database(0, options.keep))


class PgSubmit(_OnPostgres, Submit):
    name = "pg-submit"
    note = "as `submit`, on a PostgreSQL store (a fresh database per run)"
    metrics = untargeted(Submit.metrics)

    def skip_reason(self, options: Options) -> str | None:
        return Submit.skip_reason(self, options) or _OnPostgres.skip_reason(self, options)

    def stored(self, server: BenchServer) -> int:
        with psycopg.connect(server.env["ASYNCFN_STORE"]) as conn:
            found = conn.execute(
                "SELECT count(*) FROM tasks WHERE function = %s", (FUNCTION,)
            ).fetchone()
        return int(found[0]) if found else 0


class PgBatch(_OnPostgres, Batch):
    name = "pg-batch"
    note = "as `batch`, on a PostgreSQL store (a fresh database per run)"
    metrics = untargeted(Batch.metrics)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (PgSubmit(), PgBatch())}
