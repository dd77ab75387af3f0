# SPDX-License-Identifier: BSD-3-Clause
"""Is an output up to date with its inputs?  One answer for every derived product, from the ledger.

Every step that derives something from files — an ingest, a band merge, a
neighbour table, a HATS export, a MOC, a HiPS — names its *target*, fingerprints
its inputs (SHA-256 of each file) and its parameters, and records in
``ledger.builds`` what it wrote: the SHA-256 of each output file (or of a whole
directory tree) and the rows it left in each table.  A rerun is skipped exactly
when the last successful build of the target has the same fingerprint *and*
its outputs are still there with the recorded checksums and row counts; a
changed input, a changed parameter, or an output deleted or modified since
makes it run again.  No file times are compared: a copied or touched file is
not a changed one, and a file rewritten within the same second is.

The check and the record run on the service side (they need the database);
the work itself may run anywhere — in this process or as a job in the compute
environment (:mod:`casuvo.jobs`) — and is wrapped by :func:`ensure_current`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from casuvo.storage import ledger
from casuvo.storage.files import checksum
from casuvo.storage.tables import row_count

__all__ = ["Fingerprint", "Outcome", "StaleInputError", "checksums", "current_build",
           "ensure_current", "fingerprint", "ingested_files", "output_checksum",
           "record_build"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fingerprint:
    """What a build of ``target`` depends on: input checksums and parameters."""

    target: str
    inputs: Mapping[str, str]
    params: Mapping[str, Any]

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of inputs and parameters."""
        text = json.dumps({"inputs": dict(self.inputs), "params": dict(self.params)},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What :func:`ensure_current` did: skipped (the recorded build stands) or built."""

    skipped: bool
    build: ledger.BuildRecord

    @property
    def result(self) -> dict[str, Any]:
        """The build's own summary (as recorded when it ran)."""
        return dict(self.build.result or {})


class StaleInputError(ValueError):
    """A table's ingested files are missing or changed: what derives from them would lie."""


def checksums(paths: Iterable[Path]) -> dict[str, str]:
    """{resolved path: SHA-256} of input files."""
    return {str(Path(p).resolve()): checksum(Path(p)) for p in paths}


def fingerprint(target: str, inputs: Iterable[Path] | Mapping[str, str],
                params: Mapping[str, Any] | None = None) -> Fingerprint:
    """The fingerprint of a build: ``inputs`` as paths (checksummed here) or {path: SHA-256}.

    ``params`` must be JSON-able; everything that changes the output belongs in
    it, nothing that does not (worker counts, progress bars).
    """
    sums = dict(inputs) if isinstance(inputs, Mapping) else checksums(inputs)
    params = dict(params or {})
    json.dumps(params)  # fail here, not in the ledger, on a value JSON cannot hold
    return Fingerprint(target, sums, params)


def output_checksum(path: Path) -> str | None:
    """SHA-256 of a file or of a directory tree (its relative names and file checksums).

    None if the path does not exist.
    """
    path = Path(path)
    if path.is_file():
        return checksum(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\0{checksum(item)}\n".encode())
    return digest.hexdigest()


def _stale_reason(conn: psycopg.Connection, fp: Fingerprint, last: ledger.BuildRecord | None
                  ) -> str | None:
    """Why ``last`` does not stand for ``fp`` (None if it does)."""
    if last is None:
        return "no build recorded"
    if last.fingerprint != fp.digest:
        changed = sorted(set(last.inputs.items()) ^ set(fp.inputs.items()))
        if changed:
            return f"input {Path(changed[0][0]).name} changed"
        keys = sorted(k for k in set(last.params) | set(fp.params)
                      if last.params.get(k) != fp.params.get(k))
        return f"parameter {keys[0] if keys else '?'} changed"
    for path, digest in last.outputs.items():
        now = output_checksum(Path(path))
        if now is None:
            return f"output {path} is missing"
        if now != digest:
            return f"output {path} changed since it was made"
    for table, rows in last.tables.items():
        have = row_count(conn, table)
        if have != rows:
            return f"{table} has {have} rows, not the {rows} of its last build"
    return None


def current_build(conn: psycopg.Connection, fp: Fingerprint) -> ledger.BuildRecord | None:
    """The recorded build that makes ``fp``'s target up to date, or None (reason logged)."""
    ledger.ensure_builds_schema(conn)
    last = ledger.last_build(conn, fp.target)
    reason = _stale_reason(conn, fp, last)
    if reason is None:
        log.info("%s: up to date", fp.target)
        return last
    log.info("%s: %s; building", fp.target, reason)
    return None


def record_build(conn: psycopg.Connection, fp: Fingerprint, *, outputs: Iterable[Path] = (),
                 tables: Mapping[str, int] | None = None,
                 result: Mapping[str, Any] | None = None, seconds: float | None = None,
                 status: str = "ok", message: str | None = None) -> ledger.BuildRecord:
    """Record a build of ``fp`` (in the caller's transaction); outputs are checksummed now."""
    sums: dict[str, str] = {}
    for path in outputs:
        digest = output_checksum(Path(path))
        if digest is None and status == "ok":
            raise FileNotFoundError(f"{path}: the build of {fp.target} did not write it")
        if digest is not None:
            sums[str(Path(path).resolve())] = digest
    build = ledger.BuildRecord(fp.target, fp.digest, dict(fp.inputs), dict(fp.params),
                               sums, dict(tables or {}),
                               None if result is None else dict(result), status, message,
                               seconds)
    ledger.ensure_builds_schema(conn)
    ledger.record_build(conn, build)
    return build


def ensure_current(dsn: str, fp: Fingerprint, outputs: Iterable[Path],
                   build: Callable[[], Mapping[str, Any]], *, tables: Iterable[str] = (),
                   force: bool = False) -> Outcome:
    """Run ``build`` unless ``fp``'s target is up to date; record what it wrote.

    ``build`` returns the build's summary (JSON-able; recorded, and given back
    on a skip) and raises on failure — the failure is recorded with its
    message and re-raised, and the last good build keeps standing only if its
    outputs are still intact.  ``tables`` (``schema.table``) are database
    outputs: the rows the build left in each are recorded, and a table that
    holds another number of rows later makes the target stale.
    """
    outputs = list(outputs)
    tables = list(tables)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not force and (last := current_build(conn, fp)) is not None:
            return Outcome(True, last)
    t0 = time.perf_counter()
    try:
        result = dict(build())
    except Exception as exc:
        with psycopg.connect(dsn, autocommit=True) as conn:
            record_build(conn, fp, result=None, seconds=time.perf_counter() - t0,
                         status="failed", message=str(exc) or type(exc).__name__)
        raise
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = {table: row_count(conn, table) for table in tables}
        missing = [table for table, n in rows.items() if n is None]
        if missing:
            raise LookupError(f"{', '.join(missing)}: the build of {fp.target} did not "
                              "create it")
        made = record_build(conn, fp, outputs=outputs, tables=rows, result=result,
                            seconds=time.perf_counter() - t0)
    return Outcome(False, made)


def ingested_files(dsn: str, table: str) -> dict[str, str]:
    """{path: SHA-256} of the files the last ingest into ``table`` loaded, verified on disk.

    What is made from a table (its neighbour table, its HATS export) is made from
    exactly these files, so that it holds the rows the database holds; a file
    that is gone or changed since its ingest raises :class:`StaleInputError`.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        ledger.ensure_schema(conn)
        files = ledger.recorded_set(conn, table)
    if not files:
        raise StaleInputError(f"{table} has not been loaded")
    for path, digest in files.items():
        if not Path(path).is_file():
            raise StaleInputError(f"{path} (ingested into {table}) no longer exists; ingest again")
        if checksum(Path(path)) != digest:
            raise StaleInputError(f"{path} changed since it was ingested into {table}; "
                             "ingest it again first")
    return files
