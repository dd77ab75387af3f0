# SPDX-License-Identifier: BSD-3-Clause
"""Transactional bulk reload of a published catalogue table from its files.

The table itself (columns, units, UCDs, indexes) is declared in the DaCHS
resource descriptor and created by ``dachs imp``; casuvo only fills it.  An
ingest is one transaction: the table's indexes are dropped, the table is
truncated, every file is streamed in with binary COPY, and the indexes are
rebuilt from their own definitions (``pg_get_indexdef``), so the database
always holds either the old table or the complete new one, never part of a
file and never duplicates.  Generated columns (the pgSphere position, the
HEALPix index, derived names) are computed by PostgreSQL during COPY.  Whether
there is anything to do is :mod:`casuvo.storage.uptodate`'s answer: nothing is
redone if the last successful ingest into the table had the same files (by
SHA-256) and parameters and the table still holds the rows it loaded.  The
build record commits with the rows it describes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql
from tqdm import tqdm

from casuvo.storage import ledger, uptodate
from casuvo.storage.ingest.fitstable import CatalogueFileError, column_names, read_columns
from casuvo.storage.ingest.pgbinary import HEADER, TRAILER, CopyColumn, iter_chunks

__all__ = ["IngestError", "IngestResult", "copy_columns", "ingest_catalogue"]

log = logging.getLogger(__name__)


class IngestError(RuntimeError):
    """An ingest failed; the table is unchanged and the ledger says why."""


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did."""

    target: str
    files: int
    rows: int
    seconds: float
    skipped: bool

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def _split(target: str) -> tuple[str, str]:
    schema, _, table = target.partition(".")
    if not table:
        raise IngestError(f"{target!r}: give the table as schema.table")
    return schema, table


def copy_columns(conn: psycopg.Connection, target: str) -> list[CopyColumn]:
    """The columns COPY must fill: all but generated ones, in table order."""
    schema, table = _split(target)
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s AND is_generated = 'NEVER'"
        " ORDER BY ordinal_position", (schema, table)).fetchall()
    if not rows:
        raise IngestError(f"table {target} does not exist; run `casuvo up` to publish it")
    return [CopyColumn(name, pg_type) for name, pg_type in rows]


def _index_definitions(conn: psycopg.Connection, target: str) -> list[tuple[str, str]]:
    schema, table = _split(target)
    return conn.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid"
        " WHERE n.nspname = %s AND t.relname = %s AND c.oid IS NULL"
        " ORDER BY i.relname", (schema, table)).fetchall()


def _validate(files: Sequence[Path], columns: Sequence[CopyColumn]) -> None:
    """Cheap checks before touching the table: each file exists and has the columns.

    Names compare case-insensitively, as SQL does: PostgreSQL folds a VSA-style
    ``jAperMag3`` declared in an RD to ``japermag3``.
    """
    if not files:
        raise IngestError("no input files")
    for path in files:
        if not path.is_file():
            raise CatalogueFileError(f"{path}: no such file")
        have = {name.lower() for name in column_names(path)}
        missing = [c.name for c in columns if c.name.lower() not in have]
        if missing:
            raise CatalogueFileError(f"{path}: missing column(s) {', '.join(missing)}")


def ingest_catalogue(dsn: str, target: str, files: Sequence[Path], *,
                     order_by: str | None = None, force: bool = False,
                     progress: bool = True) -> IngestResult:
    """Replace the contents of ``target`` with the rows of ``files``.

    ``order_by`` sorts each file's rows on that column before COPY (for
    Gaia, ``source_id`` — HEALPix order — so that spatially close rows share
    disk pages).  Raises :class:`IngestError` (with the file named) on failure,
    after recording it in the ledger; the table is then unchanged.
    """
    files = [Path(f).resolve() for f in files]
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        ledger.ensure_schema(conn)
        columns = copy_columns(conn, target)
        try:
            _validate(files, columns)
            sums = {str(f): ledger.checksum(f) for f in files}
        except CatalogueFileError as exc:
            _record_failure(conn, target, exc)
            raise IngestError(str(exc)) from exc
        fp = uptodate.fingerprint(target, sums, {"order_by": order_by})
        if not force and (done := uptodate.current_build(conn, fp)) is not None:
            return IngestResult(target, len(files), done.tables[target],
                                time.perf_counter() - t0, skipped=True)

    with psycopg.connect(dsn) as conn:
        try:
            entries, total = _reload(conn, target, files, columns, sums, order_by, progress)
            ledger.record(conn, entries)
            uptodate.record_build(conn, fp, tables={target: total},
                                  result={"rows": total, "files": len(files)},
                                  seconds=time.perf_counter() - t0)
            conn.commit()
        except (CatalogueFileError, psycopg.Error) as exc:
            conn.rollback()
            with psycopg.connect(dsn, autocommit=True) as side:
                _record_failure(side, target, exc)
            raise IngestError(f"ingest into {target} failed, table unchanged: {exc}"
                              ) from exc
        conn.autocommit = True
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(*_split(target))))
    seconds = time.perf_counter() - t0
    log.info("ingested %d rows from %d file(s) into %s in %.1f s", total, len(files),
             target, seconds)
    return IngestResult(target, len(files), total, seconds, skipped=False)


def _reload(conn: psycopg.Connection, target: str, files: Sequence[Path],
            columns: Sequence[CopyColumn], sums: dict[str, str], order_by: str | None,
            progress: bool) -> tuple[list[ledger.LedgerEntry], int]:
    schema, table = _split(target)
    qualified = sql.Identifier(schema, table)
    indexes = _index_definitions(conn, target)
    conn.execute(sql.SQL("TRUNCATE {}").format(qualified))
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    # Binary COPY needs a binary input function for *every* column of the
    # target, generated ones included, and pgSphere's spoint has none; so rows
    # go into a temporary staging table with only the COPY columns (no WAL, no
    # indexes) and from there into the target, which computes its generated
    # columns.  Measured in bench/ingest.py.
    stage = sql.Identifier(f"stage_{table}")
    conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
                         ).format(stage, sql.SQL(", ").join(
                             sql.Identifier(c.name) for c in columns), qualified))
    col_list = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(stage, col_list)
    move_sql = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        qualified, col_list, col_list, stage)
    entries, total = [], 0
    names = [c.name for c in columns]
    bar = tqdm(total=len(files), unit="file", desc=f"ingest {target}", disable=not progress)
    for path in files:
        t = time.perf_counter()
        arrays = read_columns(path, names)
        if order_by:
            order = np.argsort(arrays[order_by], kind="stable")
            arrays = {k: v[order] for k, v in arrays.items()}
        nrows = len(arrays[names[0]])
        try:
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                copy.write(HEADER)
                for chunk in iter_chunks(columns, arrays):
                    copy.write(chunk)
                copy.write(TRAILER)
            conn.execute(move_sql)
            conn.execute(sql.SQL("TRUNCATE {}").format(stage))
        except psycopg.Error as exc:
            raise CatalogueFileError(f"{path}: rejected by the database ({exc})") from exc
        except ValueError as exc:
            raise CatalogueFileError(f"{path}: {exc}") from exc
        seconds = time.perf_counter() - t
        entries.append(ledger.LedgerEntry(target, str(path), sums[str(path)], nrows, seconds,
                                          "ok"))
        total += nrows
        bar.update(1)
        bar.set_postfix(rows=total)
        log.info("copied %d rows from %s (%.1f s)", nrows, path.name, seconds)
    bar.close()
    for name, definition in indexes:
        t = time.perf_counter()
        conn.execute(definition)
        log.info("built index %s (%.1f s)", name, time.perf_counter() - t)
    return entries, total


def _record_failure(conn: psycopg.Connection, target: str, exc: Exception) -> None:
    message = str(exc)
    path = message.split(":", 1)[0] if ":" in message else ""
    log.error("ingest into %s failed: %s", target, message)
    ledger.record(conn, [ledger.LedgerEntry(target, path, None, None, None, "failed",
                                            message)])
