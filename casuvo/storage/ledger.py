# SPDX-License-Identifier: BSD-3-Clause
"""The processing ledger: what was ingested or produced, when, from what, and how it went.

``ledger.ingests``, owned by casuvo (not by an RD): every input file of every
ingest gets a row with its SHA-256 checksum, row count, duration and status, so
an operator can answer "what is in gaia.sources and where did it come from".
``ledger.builds``: one row per build of a derived output (an ingest, a band
merge, a neighbour table, a HATS export, a MOC, a HiPS) with the fingerprint of
its inputs and parameters and the checksums of what it wrote, which
:mod:`casuvo.storage.uptodate` compares to decide that a rerun has nothing to do.
``ledger.runs``/``ledger.products``: the imaging pipelines' runs and products.
Failures are written on their own connection, so they survive the rollback of
the data they describe.  This module holds all SQL on the ``ledger`` schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg.rows import args_row
from psycopg.types.json import Jsonb

from casuvo._version import __version__
from casuvo.storage.files import checksum  # the one SHA-256 of a file; re-exported

__all__ = [
    "BuildRecord",
    "FailedProduct",
    "ImageProduct",
    "LedgerEntry",
    "ProductEntry",
    "ProductSummary",
    "RunEntry",
    "checksum",
    "ensure_builds_schema",
    "ensure_products_schema",
    "ensure_schema",
    "failed_products",
    "last_build",
    "last_ingests",
    "last_runs",
    "latest_image_products",
    "product_runs",
    "product_summaries",
    "record",
    "record_build",
    "record_product",
    "record_run_end",
    "record_run_start",
    "recorded_set",
]

T = TypeVar("T")

DDL = """
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE TABLE IF NOT EXISTS ledger.ingests (
    id bigserial PRIMARY KEY,
    target text NOT NULL,
    file text NOT NULL,
    checksum text,
    rows bigint,
    seconds double precision,
    status text NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    message text,
    code_version text NOT NULL,
    finished timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ingests_target_idx ON ledger.ingests (target, finished);
"""


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row: a file's part in an ingest into ``target``."""

    target: str
    file: str
    checksum: str | None
    rows: int | None
    seconds: float | None
    status: str
    message: str | None = None
    finished: datetime | None = None


def _rows(conn: psycopg.Connection, row: Callable[..., T], query: str,
          params: Sequence[Any] | None = None) -> list[T]:
    """The rows ``query`` returns, each made into ``row`` (called with its columns in order)."""
    with conn.cursor(row_factory=args_row(row)) as cur:
        return cur.execute(query, params).fetchall()


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the ledger schema and table if needed."""
    conn.execute(DDL)


def record(conn: psycopg.Connection, entries: list[LedgerEntry]) -> None:
    """Append entries (in the caller's transaction)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ledger.ingests (target, file, checksum, rows, seconds, status,"
            " message, code_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(e.target, e.file, e.checksum, e.rows, e.seconds, e.status, e.message,
              __version__) for e in entries])


def recorded_set(conn: psycopg.Connection, target: str) -> dict[str, str]:
    """{file: checksum} of the last successful ingest into ``target``.

    An ingest writes all its 'ok' rows in one transaction, so they share
    ``finished`` (the transaction's ``now()``).
    """
    return {file: checksum for file, checksum, _ in _last_ok(conn, target)}


def _last_ok(conn: psycopg.Connection, target: str) -> list[tuple[str, str, int]]:
    return conn.execute(
        "SELECT file, checksum, rows FROM ledger.ingests WHERE target = %s AND status = 'ok'"
        " AND finished = (SELECT max(finished) FROM ledger.ingests"
        "                 WHERE target = %s AND status = 'ok')", (target, target)).fetchall()


def last_ingests(conn: psycopg.Connection, limit: int = 10) -> list[LedgerEntry]:
    """The most recent ledger rows, newest first (for ``casuvo status``)."""
    return _rows(conn, LedgerEntry,
                 "SELECT target, file, checksum, rows, seconds, status, message, finished"
                 " FROM ledger.ingests ORDER BY finished DESC, id DESC LIMIT %s", (limit,))


PRODUCTS_DDL = """
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE TABLE IF NOT EXISTS ledger.runs (
    run_id text PRIMARY KEY,
    pipeline text NOT NULL,
    started timestamptz NOT NULL DEFAULT now(),
    finished timestamptz,
    status text NOT NULL DEFAULT 'running',
    n_ok integer, n_failed integer, n_resumed integer,
    scheduler text,
    params jsonb,
    code_version text NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger.products (
    id bigserial PRIMARY KEY,
    run_id text NOT NULL REFERENCES ledger.runs (run_id),
    pipeline text NOT NULL,
    product text NOT NULL,
    kind text NOT NULL,
    files text[] NOT NULL DEFAULT '{}',
    inputs jsonb NOT NULL DEFAULT '{}',
    params jsonb,
    qc jsonb,
    meta jsonb,
    status text NOT NULL CHECK (status IN ('ok', 'failed', 'resumed')),
    message text,
    seconds double precision,
    code_version text NOT NULL,
    finished timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS products_product_idx ON ledger.products (product, finished);
"""


def ensure_products_schema(conn: psycopg.Connection) -> None:
    """Create the pipeline run and product tables if needed.

    DaCHS's administrative role may read them: the archives publish the
    product records through views (``vista.processing``) that it owns.  Pipelines
    of several surveys start at once: a transaction-level advisory lock keeps their
    DDL and GRANTs apart (concurrent GRANTs fail with "tuple concurrently updated").
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('casuvo ledger schema'))")
        conn.execute(PRODUCTS_DDL)
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'gavoadmin'").fetchone():
            conn.execute("GRANT USAGE ON SCHEMA ledger TO gavoadmin;"
                         " GRANT SELECT ON ALL TABLES IN SCHEMA ledger TO gavoadmin")


@dataclass(frozen=True)
class ProductEntry:
    """One ``ledger.products`` row: a product of a pipeline run, or a failure (kind 'failed').

    ``inputs`` maps input paths to their SHA-256; ``qc`` and ``meta`` may hold
    numpy numbers (written as JSON floats).
    """

    run_id: str
    pipeline: str
    product: str
    kind: str
    files: Sequence[str]
    inputs: Mapping[str, str | None]
    params: Mapping[str, Any]
    qc: Mapping[str, Any] | None
    meta: Mapping[str, Any] | None
    status: str
    """'ok', 'failed' or 'resumed' (found complete, not made again)."""
    message: str | None = None
    seconds: float | None = None


def record_run_start(conn: psycopg.Connection, run_id: str, pipeline: str, scheduler: str,
                     params: Mapping[str, Any]) -> None:
    """Open a pipeline run in ``ledger.runs`` (status 'running' until :func:`record_run_end`)."""
    conn.execute("INSERT INTO ledger.runs (run_id, pipeline, scheduler, params,"
                 " code_version) VALUES (%s, %s, %s, %s, %s)",
                 (run_id, pipeline, scheduler, json.dumps(dict(params)), __version__))


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as null: jsonb has no NaN (a detector with too
    few stars has no seeing)."""
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    try:
        if isinstance(value, bool | int | str) or value is None:
            return value
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if math.isfinite(number) else None


def record_product(conn: psycopg.Connection, entry: ProductEntry) -> None:
    """Append a product (or a failure) of a run to ``ledger.products``."""
    def as_json(value: Mapping[str, Any] | None) -> str | None:
        return None if value is None else json.dumps(_json_safe(value), default=float)

    conn.execute(
        "INSERT INTO ledger.products (run_id, pipeline, product, kind, files, inputs, params,"
        " qc, meta, status, message, seconds, code_version)"
        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (entry.run_id, entry.pipeline, entry.product, entry.kind, list(entry.files),
         json.dumps(dict(entry.inputs)), json.dumps(dict(entry.params)), as_json(entry.qc),
         as_json(entry.meta), entry.status, entry.message, entry.seconds, __version__))


def record_run_end(conn: psycopg.Connection, run_id: str, status: str, n_ok: int,
                   n_failed: int, n_resumed: int) -> None:
    """Close a pipeline run: its final status and product counts."""
    conn.execute("UPDATE ledger.runs SET finished = now(), status = %s, n_ok = %s,"
                 " n_failed = %s, n_resumed = %s WHERE run_id = %s",
                 (status, n_ok, n_failed, n_resumed, run_id))


class RunEntry(NamedTuple):
    """A pipeline run as ``casuvo pipeline status`` lists it."""

    run_id: str
    pipeline: str
    started: datetime
    finished: datetime | None
    status: str
    n_ok: int | None
    n_resumed: int | None
    n_failed: int | None


def last_runs(conn: psycopg.Connection, limit: int = 6) -> list[RunEntry]:
    """The most recently started pipeline runs, newest first."""
    return _rows(conn, RunEntry,
                 "SELECT run_id, pipeline, started, finished, status, n_ok, n_resumed, n_failed"
                 " FROM ledger.runs ORDER BY started DESC LIMIT %s", (limit,))


class ProductSummary(NamedTuple):
    """The products of one pipeline and kind (latest record of each): count and mean QC."""

    pipeline: str
    kind: str
    n: int
    n_pass: int
    seeing_arcsec: float | None
    magzpt: float | None
    depth: float | None


def product_summaries(conn: psycopg.Connection) -> list[ProductSummary]:
    """Per pipeline and kind: the products (each at its latest record that did not fail),
    how many passed QC, and their mean seeing, zero point and depth."""
    return _rows(conn, ProductSummary, """
        SELECT pipeline, kind, count(*),
               count(*) FILTER (WHERE qc->>'qcstatus' = 'pass'),
               avg((qc->>'seeing_arcsec')::float), avg((qc->>'magzpt')::float),
               avg((qc->>'depth')::float)
        FROM (SELECT DISTINCT ON (product) * FROM ledger.products
              WHERE status <> 'failed' ORDER BY product, finished DESC) p
        GROUP BY pipeline, kind ORDER BY pipeline, kind""")


class FailedProduct(NamedTuple):
    """A failure recorded by a pipeline run: when, which pipeline, and its message."""

    finished: datetime
    pipeline: str
    message: str | None


def failed_products(conn: psycopg.Connection, limit: int = 10) -> list[FailedProduct]:
    """The most recent product failures, newest first."""
    return _rows(conn, FailedProduct,
                 "SELECT finished, pipeline, message FROM ledger.products"
                 " WHERE status = 'failed' ORDER BY finished DESC LIMIT %s", (limit,))


class ImageProduct(NamedTuple):
    """The latest successful record of a stacked pawprint or tile."""

    product: str
    kind: str
    files: list[str]
    qc: dict[str, Any]
    meta: dict[str, Any]


def latest_image_products(conn: psycopg.Connection, pipeline: str) -> list[ImageProduct]:
    """The stacks and tiles of ``pipeline``, each at its latest record that did not fail."""
    return _rows(conn, ImageProduct,
                 "SELECT DISTINCT ON (product) product, kind, files, qc, meta"
                 " FROM ledger.products"
                 " WHERE pipeline = %s AND status <> 'failed' AND kind IN ('stack', 'tile')"
                 " ORDER BY product, finished DESC", (pipeline,))


def product_runs(conn: psycopg.Connection, pipeline: str) -> dict[str, str]:
    """{product file name: run id} of the last successful run that made or kept it.

    A run that made a product ('ok') wins over later ones that found it made
    ('resumed').  Empty when the pipelines have never run (no ledger table yet).
    """
    if conn.execute("SELECT to_regclass('ledger.products')").fetchone()[0] is None:
        return {}
    rows = conn.execute(
        "SELECT DISTINCT ON (product) product, run_id FROM ledger.products"
        " WHERE pipeline = %s AND status IN ('ok', 'resumed')"
        " ORDER BY product, (status = 'ok') DESC, finished DESC", (pipeline,)).fetchall()
    return {product: run for product, run in rows}


def product_release_overrides(conn: psycopg.Connection, pipeline: str) -> dict[str, str]:
    """{product file name: release date (ISO)} set by a run's ``--release-date``.

    The latest run that made or found the product decides: its release date if
    it gave one; none (a run without the option, or runs recorded before runs
    kept the option) leaves the product to the survey's rules.
    """
    if conn.execute("SELECT to_regclass('ledger.products')").fetchone()[0] is None:
        return {}
    rows = conn.execute(
        "SELECT DISTINCT ON (p.product) p.product, r.params->>'release_date'"
        " FROM ledger.products p JOIN ledger.runs r USING (run_id)"
        " WHERE p.pipeline = %s AND p.status IN ('ok', 'resumed')"
        " AND r.params ? 'release_date'"
        " ORDER BY p.product, r.started DESC", (pipeline,)).fetchall()
    return {product: released for product, released in rows if released}


BUILDS_DDL = """
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE TABLE IF NOT EXISTS ledger.builds (
    id bigserial PRIMARY KEY,
    target text NOT NULL,
    fingerprint text NOT NULL,
    inputs jsonb NOT NULL,
    params jsonb NOT NULL,
    outputs jsonb NOT NULL DEFAULT '{}',
    tables jsonb NOT NULL DEFAULT '{}',
    result jsonb,
    status text NOT NULL CHECK (status IN ('ok', 'failed')),
    message text,
    seconds double precision,
    code_version text NOT NULL,
    finished timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS builds_target_idx ON ledger.builds (target, finished);
"""


@dataclass(frozen=True)
class BuildRecord:
    """One ``ledger.builds`` row: what a build of ``target`` read, was asked and wrote.

    ``inputs`` maps input paths to their SHA-256, ``outputs`` output paths
    (files or directories) to theirs, ``tables`` database tables to the rows
    the build left in them; ``fingerprint`` digests inputs and parameters.
    """

    target: str
    fingerprint: str
    inputs: dict[str, str]
    params: dict[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    status: str = "ok"
    message: str | None = None
    seconds: float | None = None
    finished: datetime | None = None


def ensure_builds_schema(conn: psycopg.Connection) -> None:
    """Create the build table if needed."""
    conn.execute(BUILDS_DDL)


def record_build(conn: psycopg.Connection, build: BuildRecord) -> None:
    """Append a build (in the caller's transaction, so it commits with the data it describes)."""
    conn.execute(
        "INSERT INTO ledger.builds (target, fingerprint, inputs, params, outputs, tables,"
        " result, status, message, seconds, code_version)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (build.target, build.fingerprint, Jsonb(build.inputs), Jsonb(build.params),
         Jsonb(build.outputs), Jsonb(build.tables),
         None if build.result is None else Jsonb(build.result), build.status, build.message,
         build.seconds, __version__))


def last_build(conn: psycopg.Connection, target: str, status: str = "ok"
               ) -> BuildRecord | None:
    """The most recent build of ``target`` with ``status``, or None."""
    row = conn.execute(
        "SELECT target, fingerprint, inputs, params, outputs, tables, result, status,"
        " message, seconds, finished FROM ledger.builds WHERE target = %s AND status = %s"
        " ORDER BY finished DESC, id DESC LIMIT 1", (target, status)).fetchone()
    return None if row is None else BuildRecord(*row)
