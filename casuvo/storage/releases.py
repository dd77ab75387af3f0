# SPDX-License-Identifier: BSD-3-Clause
"""Phase 3 releases as archive records: ``ledger.releases`` and ``ledger.release_products``.

A release is built from a query over the archive (:mod:`casuvo.release`); this
module runs that query the way the archive's users would see it and records
what came out:

- :func:`select_products` runs the selecting SQL as DaCHS's query role with
  the release's groups (``casuvo.groups``), so row-level security decides what
  a release may hold: a public release sees public rows only, a group's
  release its group's proprietary rows too.  The superuser, which PostgreSQL
  never filters, is not used for the selection.
- :func:`record_release` stores the release (name, date, query, group,
  counts per category, the manifest, the archive state) and one row per
  released file, in one transaction; rebuilding a release replaces its rows.
  The tables carry the release's group as ``owner_group`` and are protected
  like the products (a group's release is visible to its members only).
  ``resdir/releases/q.rd`` publishes them in TAP (``releases.releases``,
  ``releases.products``), and DataLink links a released product to its release.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from casuvo.storage import access

__all__ = ["DDL", "ReleaseRecord", "ReleasedFile", "ensure_schema", "record_release",
           "released_names", "select_products"]

DDL = """
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE TABLE IF NOT EXISTS ledger.releases (
    name text PRIMARY KEY,
    built timestamptz NOT NULL,
    query text NOT NULL,
    owner_group text,
    release_date date,
    n_files integer NOT NULL,
    counts jsonb NOT NULL,
    archive_state jsonb NOT NULL,
    manifest jsonb NOT NULL,
    directory text NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger.release_products (
    release text NOT NULL REFERENCES ledger.releases (name) ON DELETE CASCADE,
    filename text NOT NULL,
    prodcatg text NOT NULL,
    accref text,
    md5 text NOT NULL,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    owner_group text,
    release_date date,
    PRIMARY KEY (release, filename)
);
CREATE INDEX IF NOT EXISTS release_products_accref_idx ON ledger.release_products (accref);
"""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the release tables (idempotent), protected and readable by DaCHS's roles."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('casuvo releases schema'))")
        conn.execute(DDL)
        for table in ("ledger.releases", "ledger.release_products"):
            access.protect(conn, table)
        roles = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles")}
        for role in (*access.BUILD_ROLES, *access.QUERY_ROLES):
            if role in roles:
                conn.execute(f'GRANT USAGE ON SCHEMA ledger TO "{role}";'
                             f' GRANT SELECT ON ledger.releases, ledger.release_products'
                             f' TO "{role}"')


#: Columns of a query result that name a product, in order of preference.
PRODUCT_COLUMNS = ("accref", "access_url", "obs_publisher_did", "ssa_pubdid")


def _accref(value: str) -> str:
    """The accref in an accref, an ObsCore DID, a getproduct URL or a DataLink/SODA URL."""
    from urllib.parse import parse_qs, unquote, urlsplit

    text = str(value)
    if "?" in text and "ID=" in text:      # http://host/…/dlget?ID=<DID>
        text = parse_qs(urlsplit(text).query).get("ID", [text])[0]
    if "~?" in text:                       # ivo://authority/~?accref
        text = text.split("~?", 1)[1]
    elif "/getproduct/" in text:           # http://host/getproduct/accref
        text = text.split("/getproduct/", 1)[1]
    return unquote(text)


def select_products(dsn: str, query: str, groups: str = access.ANONYMOUS,
                    role: str = access.QUERY_ROLES[0]) -> list[str]:
    """The accrefs a query selects, as DaCHS's query ``role`` acting for ``groups``.

    Raises ValueError when the result has none of :data:`PRODUCT_COLUMNS`
    (the query must say which products it means).  Read-only: the query runs
    in a read-only transaction, so a release query changes nothing.
    """
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(f'SET LOCAL ROLE "{role}"')
        conn.execute("SELECT set_config(%s, %s, true)", (access.GUC, groups))
        cur = conn.execute(query)  # type: ignore[arg-type]  # the operator's own query
        if cur.description is None:
            raise ValueError("the release query returns no rows (not a SELECT)")
        names = [d.name.lower() for d in cur.description]
        column = next((c for c in PRODUCT_COLUMNS if c in names), None)
        if column is None:
            raise ValueError("the release query must return a column naming products: one of "
                             + ", ".join(PRODUCT_COLUMNS) + f" (it returns {', '.join(names)})")
        index = names.index(column)
        refs = [_accref(row[index]) for row in cur if row[index] is not None]
        conn.rollback()
    return list(dict.fromkeys(refs))


@dataclass(frozen=True)
class ReleasedFile:
    """One file of a release, as recorded."""

    filename: str
    prodcatg: str
    accref: str | None
    md5: str
    sha256: str
    size: int


@dataclass
class ReleaseRecord:
    """One release: what was asked, for whom, what came out, from which archive state."""

    name: str
    built: str
    query: str
    owner_group: str | None
    directory: str
    files: list[ReleasedFile]
    archive_state: Mapping[str, Any] = field(default_factory=dict)
    manifest: Mapping[str, Any] = field(default_factory=dict)
    release_date: str | None = None
    """The latest release date of its proprietary products (None: all public)."""

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            out[f.prodcatg] = out.get(f.prodcatg, 0) + 1
        return dict(sorted(out.items()))


def record_release(dsn: str, record: ReleaseRecord) -> None:
    """Store (or replace) a release and its files in one transaction.

    A release holding proprietary products is its group's until the last of
    them is released (the products' own rule); a public release is everyone's.
    """
    release_date = record.release_date
    with psycopg.connect(dsn) as conn, conn.transaction():
        ensure_schema(conn)
        conn.execute("DELETE FROM ledger.releases WHERE name = %s", (record.name,))
        conn.execute(
            "INSERT INTO ledger.releases (name, built, query, owner_group, release_date,"
            " n_files, counts, archive_state, manifest, directory)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (record.name, record.built, record.query, record.owner_group, release_date,
             len(record.files), json.dumps(record.counts), json.dumps(record.archive_state),
             json.dumps(record.manifest), record.directory))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ledger.release_products (release, filename, prodcatg, accref,"
                " md5, sha256, size, owner_group, release_date)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(record.name, f.filename, f.prodcatg, f.accref, f.md5, f.sha256, f.size,
                  record.owner_group, release_date) for f in record.files])


def released_names(dsn: str, exclude: Iterable[str] = ()) -> dict[str, str]:
    """File name → release, over every recorded release except ``exclude``
    (for provenance: a file already released need not be delivered again)."""
    skip = list(exclude)
    with psycopg.connect(dsn) as conn:
        ensure_schema(conn)
        rows = conn.execute("SELECT filename, release FROM ledger.release_products"
                            " WHERE release <> ALL(%s) ORDER BY release", (skip,)).fetchall()
    return {f: r for f, r in rows}
