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

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from casuvo._version import __version__
from casuvo.storage.files import checksum  # the one SHA-256 of a file; re-exported

__all__ = ["BuildRecord", "LedgerEntry", "checksum", "ensure_builds_schema", "ensure_schema",
           "last_build", "last_ingests", "record", "record_build", "recorded_rows",
           "recorded_set"]

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


def recorded_rows(conn: psycopg.Connection, target: str) -> int:
    """Rows the last successful ingest into ``target`` loaded (all its files)."""
    return sum(rows for _, _, rows in _last_ok(conn, target))


def _last_ok(conn: psycopg.Connection, target: str) -> list[tuple[str, str, int]]:
    return conn.execute(
        "SELECT file, checksum, rows FROM ledger.ingests WHERE target = %s AND status = 'ok'"
        " AND finished = (SELECT max(finished) FROM ledger.ingests"
        "                 WHERE target = %s AND status = 'ok')", (target, target)).fetchall()


def last_ingests(conn: psycopg.Connection, limit: int = 10) -> list[LedgerEntry]:
    """The most recent ledger rows, newest first (for ``casuvo status``)."""
    rows = conn.execute(
        "SELECT target, file, checksum, rows, seconds, status, message, finished"
        " FROM ledger.ingests ORDER BY finished DESC, id DESC LIMIT %s", (limit,)).fetchall()
    return [LedgerEntry(*row) for row in rows]


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
    product records through views (``vista.processing``) that it owns.
    """
    conn.execute(PRODUCTS_DDL)
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'gavoadmin'").fetchone():
        conn.execute("GRANT USAGE ON SCHEMA ledger TO gavoadmin;"
                     " GRANT SELECT ON ALL TABLES IN SCHEMA ledger TO gavoadmin")


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
