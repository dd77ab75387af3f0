# SPDX-License-Identifier: BSD-3-Clause
"""Atomic bulk reload of a published catalogue table from its files.

The table itself (columns, units, UCDs, indexes) is declared in the DaCHS
resource descriptor and created by ``dachs imp``; casuvo only fills it.  An
ingest builds the new table beside the old one and swaps them: a *shadow
table* is created with the target's definition (``LIKE … INCLUDING ALL``:
generated columns, constraints, defaults; then its owner, privileges, comment
and options), every file is streamed into it with binary COPY (several files
at once, each on its own connection), it is ANALYZEd, and the target's indexes
are rebuilt on it from their own definitions (``pg_get_indexdef``), several at
once on separate connections.  Only then, in one short transaction, the old
table is dropped, the shadow renamed to its name, the indexes renamed to theirs
and the ledger written.  Until that commit the published table is untouched and
readable; a failure anywhere drops the shadow and leaves it as it was, so the
database holds either the old table or the complete new one, never part of a
file and never duplicates.  (Loading into the published table itself inside one
transaction, as casuvo did before, would serialise the index builds: other
connections cannot see uncommitted rows.)  Generated columns (the pgSphere
position, the HEALPix index, derived names) are computed by PostgreSQL during
the load.  Whether there is anything to do is :mod:`casuvo.storage.uptodate`'s
answer: nothing is redone if the last successful ingest into the table had the
same files (by SHA-256) and parameters and the table still holds the rows it
loaded.  The build record commits with the swap.

A killed ingest (SIGKILL, a lost connection, a crash) resumes: each file's rows
commit into the shadow table together with the file's row in a *progress table*
beside it (``<table>__casuvo_files``: file, checksum, rows), whose comment holds
the ingest's fingerprint.  A rerun with the same fingerprint, finding both with
the target's columns, keeps the shadow table, loads only the files not yet in
it, drops any index a killed build left and builds them all again; anything else
starts afresh.  The swap drops the progress table.

The table is replaced, not emptied: its oid changes (DaCHS and TAP_SCHEMA
refer to tables by name), and a view depending on it makes the ingest fail
before it starts.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from tqdm import tqdm

from casuvo.storage import ledger, uptodate
from casuvo.storage.ingest import policies
from casuvo.storage.ingest.fitstable import CatalogueFileError
from casuvo.storage.ingest.pgbinary import (
    HEADER,
    ISO_TYPES,
    TEXT_TYPES,
    TRAILER,
    CopyColumn,
    iter_chunks,
)
from casuvo.storage.ingest.tablefile import column_names, read_rows

__all__ = ["IngestError", "IngestResult", "copy_columns", "ingest_catalogue"]

log = logging.getLogger(__name__)

#: Connections an ingest loads files and builds indexes on, side by side.
WORKERS = 2
#: ``maintenance_work_mem`` of the index-building sessions (btree sorts in memory).
INDEX_MEMORY = "1GB"


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
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds of each phase: checksums (and file checks), prepare, copy (staging and
    moving into the new table), analyze, indexes, swap."""
    index_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds of each index build (they overlap: their sum exceeds ``phases["indexes"]``)."""
    resumed_files: int = 0
    """Files a killed ingest had already loaded into the new table, not loaded again."""

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


@dataclass(frozen=True)
class _Index:
    """An index of the target, to be rebuilt on the shadow table under a temporary name."""

    name: str
    definition: str
    constraint: str | None
    """Name of the PRIMARY KEY / UNIQUE / EXCLUDE constraint the index backs, if any."""
    kind: str | None
    constraint_def: str | None


@dataclass(frozen=True)
class _Shape:
    """What the new table must inherit from the one it replaces, besides its columns."""

    owner: str
    grants: list[tuple[str, str, bool]]
    comment: str | None
    options: list[str]
    indexes: list[_Index]
    security: policies.Security


def _shape(conn: psycopg.Connection, target: str) -> _Shape:
    schema, table = _split(target)
    oid = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s", (schema, table)).fetchone()[0]
    owner, comment, options = conn.execute(
        "SELECT pg_get_userbyid(relowner), obj_description(oid, 'pg_class'),"
        " coalesce(reloptions, '{}') FROM pg_class WHERE oid = %s", (oid,)).fetchone()
    grants = conn.execute(
        "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC'"
        " ELSE pg_get_userbyid(a.grantee) END, a.is_grantable"
        " FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %s", (oid,)).fetchall()
    views = conn.execute(
        "SELECT DISTINCT v.oid::regclass::text FROM pg_depend d"
        " JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class"
        " WHERE d.refobjid = %s AND v.oid <> %s", (oid, oid)).fetchall()
    if views:
        raise IngestError(f"{target} cannot be replaced: view(s) "
                          f"{', '.join(v for v, in views)} depend on it")
    indexes = [_Index(*row) for row in conn.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid), c.conname, c.contype::text,"
        " pg_get_constraintdef(c.oid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid"
        " WHERE x.indrelid = %s ORDER BY i.relname", (oid,)).fetchall()]
    return _Shape(owner, grants, comment, list(options), indexes, policies.capture(conn, oid))


_INDEXDEF = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ USING (\w+) (.*)$", re.S)


def _shadow_index(index: _Index, shadow: sql.Composable, temp_name: str) -> tuple[str, str]:
    """(SQL creating ``index`` on the shadow table as ``temp_name``, its access method)."""
    match = _INDEXDEF.match(index.definition)
    if match is None:
        raise IngestError(f"cannot rebuild index {index.name}: {index.definition}")
    unique, method, rest = match.groups()
    return (sql.SQL("CREATE {}INDEX {} ON {} USING {} {}").format(
        sql.SQL(unique or ""), sql.Identifier(temp_name), shadow, sql.SQL(method),
        sql.SQL(rest)).as_string(None), method)


def ingest_catalogue(dsn: str, target: str, files: Sequence[Path], *,
                     order_by: str | None = None, force: bool = False,
                     progress: bool = True, workers: int = WORKERS) -> IngestResult:
    """Replace the contents of ``target`` with the rows of ``files``.

    ``order_by`` sorts each file's rows on that column before COPY (for
    Gaia, ``source_id`` — HEALPix order — so that spatially close rows share
    disk pages).  ``workers``
    connections load files and build indexes side by side.  Raises
    :class:`IngestError` (with the file named) on failure, after recording it
    in the ledger; the table is then unchanged.
    """
    files = [Path(f).resolve() for f in files]
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        ledger.ensure_schema(conn)
        columns = copy_columns(conn, target)
        try:
            _validate(files, columns)
            sums = {str(f): ledger.checksum(f) for f in files}
            checked = time.perf_counter() - t0
        except CatalogueFileError as exc:
            _record_failure(conn, target, exc)
            raise IngestError(str(exc)) from exc
        fp = uptodate.fingerprint(target, sums, {"order_by": order_by})
        if not force and (done := uptodate.current_build(conn, fp)) is not None:
            return IngestResult(target, len(files), done.tables[target],
                                time.perf_counter() - t0, skipped=True)

    schema, table = _split(target)
    shadow = sql.Identifier(schema, f"{table[:44]}__casuvo_load")
    loaded = sql.Identifier(schema, f"{table[:44]}__casuvo_files")
    phases: dict[str, float] = {"checksums": checked}
    with psycopg.connect(dsn, autocommit=True) as conn:
        # One ingest per table at a time: the shadow table's name is fixed.
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"casuvo.ingest {target}",))
        try:
            t = time.perf_counter()
            shape = _shape(conn, target)
            resumed = _resumable(conn, target, shadow, loaded, fp.digest, sums)
            if resumed is None:
                _create_shadow(conn, target, shadow, shape)
                _create_progress(conn, loaded, fp.digest)
                resumed = {}
            else:
                log.info("%s: resuming a killed ingest, %d of %d file(s) already loaded",
                         target, len(resumed), len(files))
            phases["prepare"] = time.perf_counter() - t
            t = time.perf_counter()
            entries, total = _load(dsn, target, shadow, files, columns, sums, order_by,
                                   progress, workers, loaded, resumed)
            phases["copy"] = time.perf_counter() - t
            t = time.perf_counter()
            conn.execute(sql.SQL("ANALYZE {}").format(shadow))
            phases["analyze"] = time.perf_counter() - t
            t = time.perf_counter()
            temp_names, index_seconds = _build_indexes(dsn, table, shadow, shape.indexes,
                                                       workers)
            phases["indexes"] = time.perf_counter() - t
            t = time.perf_counter()
            with conn.transaction():
                _swap(conn, schema, table, shadow, shape, temp_names)
                conn.execute(sql.SQL("DROP TABLE {}").format(loaded))
                ledger.record(conn, entries)
                uptodate.record_build(conn, fp, tables={target: total},
                                      result={"rows": total, "files": len(files)},
                                      seconds=time.perf_counter() - t0)
            phases["swap"] = time.perf_counter() - t
        except (CatalogueFileError, IngestError, psycopg.Error) as exc:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}").format(shadow, loaded))
            with psycopg.connect(dsn, autocommit=True) as side:
                _record_failure(side, target, exc)
            raise IngestError(f"ingest into {target} failed, table unchanged: {exc}"
                              ) from exc
    seconds = time.perf_counter() - t0
    log.info("ingested %d rows from %d file(s) into %s in %.1f s (%s)", total, len(files),
             target, seconds, ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    return IngestResult(target, len(files), total, seconds, skipped=False, phases=phases,
                        index_seconds=index_seconds, resumed_files=len(resumed))


def _columns_of(conn: psycopg.Connection, relation: str) -> list[tuple]:
    """Name, type, nullability and generation of each column of ``relation`` (a name as
    ``to_regclass`` reads it)."""
    return conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull, attgenerated"
        " FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum", (relation,)).fetchall()


def _resumable(conn: psycopg.Connection, target: str, shadow: sql.Identifier,
               loaded: sql.Identifier, digest: str, sums: dict[str, str]
               ) -> dict[str, int] | None:
    """The files (→ rows) a killed ingest of the same fingerprint loaded into the shadow
    table, which is kept for them; None (and both tables dropped) if there is nothing
    to resume.  Indexes a killed build left on the shadow table are dropped: they are
    built again after the remaining files."""
    names = [ident.as_string(conn) for ident in (shadow, loaded)]
    exists = [conn.execute("SELECT to_regclass(%s) IS NOT NULL", (n,)).fetchone()[0]
              for n in names]
    if not any(exists):
        return None
    if all(exists):
        with conn.transaction():
            # Waits for the killed ingest's sessions: an index build in autocommit
            # mode still commits when it ends, its client gone or not.
            conn.execute(sql.SQL("LOCK TABLE {}, {} IN ACCESS EXCLUSIVE MODE").format(
                shadow, loaded))
            if _same_ingest(conn, target, names, digest, sums):
                for (index,) in conn.execute(
                        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid ="
                        " to_regclass(%s)", (names[0],)).fetchall():
                    conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(index)))
                return {f: rows for f, _, rows in conn.execute(
                    sql.SQL("SELECT file, checksum, rows FROM {}").format(loaded))}
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}").format(shadow, loaded))
    return None


def _same_ingest(conn: psycopg.Connection, target: str, names: Sequence[str], digest: str,
                 sums: dict[str, str]) -> bool:
    """Whether the shadow and progress tables ``names`` are this ingest's: the same
    fingerprint, the target's columns, and only files of this ingest loaded."""
    shadow, loaded = names
    comment = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')",
                           (loaded,)).fetchone()[0]
    if comment != digest or _columns_of(conn, shadow) != _columns_of(
            conn, sql.Identifier(*_split(target)).as_string(conn)):
        return False
    recorded = conn.execute(sql.SQL("SELECT file, checksum FROM {}").format(
        sql.SQL(loaded))).fetchall()
    return all(sums.get(f) == checksum for f, checksum in recorded)


def _create_progress(conn: psycopg.Connection, loaded: sql.Identifier, digest: str) -> None:
    """The progress table of a new shadow table: one row per file loaded into it."""
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(loaded))
        conn.execute(sql.SQL("CREATE TABLE {} (file text PRIMARY KEY, checksum text NOT NULL,"
                             " rows bigint NOT NULL)").format(loaded))
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(loaded, sql.Literal(digest)))


def _create_shadow(conn: psycopg.Connection, target: str, shadow: sql.Identifier,
                   shape: _Shape) -> None:
    """An empty copy of ``target`` without indexes: columns, generated columns, constraints,
    defaults, comments, storage, owner, privileges and options (a leftover of a crashed
    ingest is dropped first)."""
    qualified = sql.Identifier(*_split(target))
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(shadow))
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING INDEXES)"
                             ).format(shadow, qualified))
        conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(
            shadow, sql.Identifier(shape.owner)))
        for privilege, grantee, grantable in shape.grants:
            conn.execute(sql.SQL("GRANT {} ON {} TO {}{}").format(
                sql.SQL(privilege), shadow,
                sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee),
                sql.SQL(" WITH GRANT OPTION" if grantable else "")))
        if shape.comment is not None:
            conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(
                shadow, sql.Literal(shape.comment)))
        if shape.options:
            conn.execute(sql.SQL("ALTER TABLE {} SET ({})").format(
                shadow, sql.SQL(", ").join(sql.SQL(o) for o in shape.options)))


def _load(dsn: str, target: str, shadow: sql.Identifier, files: Sequence[Path],
          columns: Sequence[CopyColumn], sums: dict[str, str], order_by: str | None,
          progress: bool, workers: int, loaded: sql.Identifier,
          resumed: dict[str, int]) -> tuple[list[ledger.LedgerEntry], int]:
    """COPY every file not in ``resumed`` into the shadow table, ``workers`` files at a
    time, biggest first; each file commits with its row in the progress table ``loaded``.

    While one connection's server process converts rows, another file is read
    and encoded here: the two halves of a load overlap.  Each file's rows go in
    sorted on ``order_by``, so that every disk page holds neighbours; a single
    order across files (one connection moving the files in turn) made the load
    slower and did not make the GiST build faster: pgSphere's GiST built in
    the same time on rows in HEALPix order, on two such sequences interleaved
    page by page (as two loaders leave them) and on rows in random order.
    """
    bar = tqdm(total=len(files), unit="file", desc=f"ingest {target}", disable=not progress)
    lock = threading.Lock()
    done: dict[Path, ledger.LedgerEntry] = {
        p: ledger.LedgerEntry(target, str(p), sums[str(p)], resumed[str(p)], None, "ok")
        for p in files if str(p) in resumed}
    bar.update(len(done))
    staged = _stage_columns(columns)

    def one(path: Path) -> None:
        t = time.perf_counter()
        nrows = _copy_file(dsn, shadow, path, staged, order_by, loaded, sums[str(path)])
        seconds = time.perf_counter() - t
        with lock:
            done[path] = ledger.LedgerEntry(target, str(path), sums[str(path)], nrows,
                                            seconds, "ok")
            bar.update(1)
            bar.set_postfix(rows=sum(e.rows or 0 for e in done.values()))
        log.info("copied %d rows from %s (%.1f s)", nrows, path.name, seconds)

    order = sorted((p for p in files if p not in done), key=lambda p: p.stat().st_size,
                   reverse=True)
    try:
        _run_all(max(1, min(workers, len(order))), [lambda p=p: one(p) for p in order])
    finally:
        bar.close()
    entries = [done[p] for p in files]
    return entries, sum(e.rows or 0 for e in entries)


def _stage_columns(columns: Sequence[CopyColumn]) -> list[tuple[CopyColumn, sql.Composable]]:
    """Each COPY column as the staging table receives it, and the SQL expression that
    turns it into the target's value.

    Rows go over the wire in one fixed layout (see :mod:`.pgbinary`): floats keep
    their NaN, which becomes NULL here, and strings arrive as the file's
    fixed-width bytes, whose padding (NUL or blank) is trimmed here.
    """
    out = []
    for col in columns:
        name = sql.Identifier(col.name)
        if col.pg_type in ("real", "double precision"):
            out.append((col, sql.SQL("NULLIF({}, 'NaN')").format(name)))
        elif col.pg_type in TEXT_TYPES:
            out.append((CopyColumn(col.name, "bytea"),
                        sql.SQL("convert_from(rtrim({}, '\\x0020'::bytea), 'UTF8')"
                                ).format(name)))
        elif col.pg_type in ISO_TYPES:        # ISO text; empty is NULL
            out.append((CopyColumn(col.name, "bytea"), sql.SQL(
                "CAST(NULLIF(convert_from(rtrim({}, '\\x0020'::bytea), 'UTF8'), '') AS {})"
            ).format(name, sql.SQL(col.pg_type))))
        else:
            out.append((col, name))
    return out


def _copy_file(dsn: str, shadow: sql.Identifier, path: Path,
               staged: Sequence[tuple[CopyColumn, sql.Composable]],
               order_by: str | None, loaded: sql.Identifier, checksum: str) -> int:
    """One file into the shadow table, on its own connection, committed with its row in
    the progress table ``loaded``; the rows loaded.

    Binary COPY needs a binary input function for *every* column of the
    target, generated ones included, and pgSphere's spoint has none; so rows
    go into a temporary staging table with only the COPY columns (no WAL, no
    indexes) and from there into the shadow table, which computes its
    generated columns (and, here, NULLs from NaN and strings from bytes).
    Measured in bench/ingest.py.
    """
    names = [c.name for c, _ in staged]
    arrays = read_rows(path, names, order_by)
    col_list = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    try:
        with psycopg.connect(dsn) as conn:
            conn.execute(sql.SQL("CREATE TEMP TABLE stage ({}) ON COMMIT DROP").format(
                sql.SQL(", ").join(sql.SQL("{} {}").format(
                    sql.Identifier(c.name), sql.SQL(c.pg_type)) for c, _ in staged)))
            with conn.cursor() as cur, cur.copy(sql.SQL(
                    "COPY stage ({}) FROM STDIN (FORMAT binary)").format(col_list)) as copy:
                copy.write(HEADER)
                for chunk in iter_chunks([c for c, _ in staged], arrays, nan_is_null=False):
                    copy.write(chunk)
                copy.write(TRAILER)
            conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM stage").format(
                shadow, col_list, sql.SQL(", ").join(expr for _, expr in staged)))
            conn.execute(sql.SQL("INSERT INTO {} (file, checksum, rows) SELECT %s, %s,"
                                 " count(*) FROM stage").format(loaded),
                         (str(path), checksum))
            conn.commit()
    except psycopg.Error as exc:
        raise CatalogueFileError(f"{path}: rejected by the database ({exc})") from exc
    except ValueError as exc:
        raise CatalogueFileError(f"{path}: {exc}") from exc
    return len(arrays[names[0]])


def _build_indexes(dsn: str, table: str, shadow: sql.Identifier, indexes: Sequence[_Index],
                   workers: int) -> tuple[dict[str, str], dict[str, float]]:
    """Build the target's indexes on the shadow table, ``workers`` at a time.

    Returns the temporary name of each (EXCLUDE constraints are added at the swap)
    and the seconds each build took.

    Each build has its own connection (one index build uses one core; GiST on
    spoint is by far the slowest, so it starts first and the btrees share the
    other connection).  ``maintenance_work_mem`` is raised for these sessions only.
    """
    temp_names = {index.name: f"{table[:40]}__casuvo_idx{i}"
                  for i, index in enumerate(indexes) if index.kind != "x"}
    jobs = [(index, *_shadow_index(index, shadow, temp_names[index.name]))
            for index in indexes if index.name in temp_names]
    jobs.sort(key=lambda job: job[2] == "btree")

    seconds: dict[str, float] = {}

    def build(index: _Index, statement: str) -> None:
        t = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(
                sql.Literal(INDEX_MEMORY)))
            # A build whose ingest was killed stops within a second, not when done.
            conn.execute("SET client_connection_check_interval = '1s'")
            conn.execute(statement)
        seconds[index.name] = time.perf_counter() - t
        log.info("built index %s (%.1f s)", index.name, seconds[index.name])

    _run_all(max(1, min(workers, len(jobs))),
             [lambda i=index, s=statement: build(i, s) for index, statement, _ in jobs])
    return temp_names, seconds


def _swap(conn: psycopg.Connection, schema: str, table: str, shadow: sql.Identifier,
          shape: _Shape, temp_names: dict[str, str]) -> None:
    """Replace the target by the shadow table (in the caller's transaction).

    Readers of the old table finish first (the exclusive lock waits for them);
    those queued behind the lock then find the new table under the same name.
    Indexes take back their names; constraint indexes become their constraints;
    row-level security (the release control) comes back before the commit.
    """
    target = sql.Identifier(schema, table)
    conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(target))
    policies.drop_dependents(conn, shape.security)
    conn.execute(sql.SQL("DROP TABLE {}").format(target))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(shadow, sql.Identifier(table)))
    policies.restore(conn, target, shape.security)
    for index in shape.indexes:
        if index.kind == "x":  # no USING INDEX form: built here, under the lock
            conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                target, sql.Identifier(index.constraint), sql.SQL(index.constraint_def)))
        elif index.kind in ("p", "u"):
            conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(
                target, sql.Identifier(index.constraint),
                sql.SQL("PRIMARY KEY" if index.kind == "p" else "UNIQUE"),
                sql.Identifier(temp_names[index.name])))
        else:
            conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema, temp_names[index.name]), sql.Identifier(index.name)))


def _run_all(workers: int, tasks: Sequence[Callable[[], None]]) -> None:
    """Run ``tasks`` on ``workers`` threads; after a failure, start no more and re-raise it
    once the running ones have ended."""
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(task) for task in tasks]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.cancel()
    for future in futures:
        if not future.cancelled() and (exc := future.exception()) is not None:
            raise exc


def _record_failure(conn: psycopg.Connection, target: str, exc: Exception) -> None:
    message = str(exc)
    path = message.split(":", 1)[0] if ":" in message else ""
    log.error("ingest into %s failed: %s", target, message)
    ledger.record(conn, [ledger.LedgerEntry(target, path, None, None, None, "failed",
                                            message)])
