# SPDX-License-Identifier: BSD-3-Clause
"""The processing ledger: what was ingested or produced, when, from what, and how it went.

One table, ``ledger.ingests``, owned by casuvo (not by an RD): every input file
of every ingest gets a row with its SHA-256 checksum, row count, duration and
status, so an operator can answer "what is in gaia.sources and where did it
come from", and a rerun can tell that nothing changed.  Failures are written on
their own connection, so they survive the rollback of the data they describe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from casuvo._version import __version__

__all__ = ["LedgerEntry", "checksum", "ensure_schema", "last_ingests", "record", "recorded_set"]

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


def checksum(path: Path, blocksize: int = 1 << 22) -> str:
    """SHA-256 of a file, streamed (catalogue files can be many GB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(blocksize):
            digest.update(block)
    return digest.hexdigest()


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
