# SPDX-License-Identifier: BSD-3-Clause
"""Published tables as the ingests and the up-to-date checks see them: rows and indexes.

The tables are declared by the resource descriptors and created by DaCHS;
casuvo only fills them.  These are the two questions its service side asks
about one: how many rows does it hold (an ingest is current only if the table
still has the rows the ledger says it loaded) and does it have its indexes (an
import that stopped half-way can leave a table without them).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

__all__ = ["index_count", "row_count", "split_name"]


def split_name(table: str) -> tuple[str, str]:
    """``schema.table`` as (schema, table); a name without a schema is a ValueError."""
    schema, _, name = table.partition(".")
    if not schema or not name:
        raise ValueError(f"{table!r}: give the table as schema.table")
    return schema, name


def row_count(conn: psycopg.Connection, table: str) -> int | None:
    """Rows in ``schema.table``, or None if there is no such table."""
    schema, name = split_name(table)
    exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{name}"',)).fetchone()[0]
    if exists is None:
        return None
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(schema, name))).fetchone()[0]


def index_count(conn: psycopg.Connection, schema: str, tables: tuple[str, ...]) -> int:
    """Indexes (primary keys included) on the named tables of ``schema``."""
    return conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = ANY(%s)",
        (schema, list(tables))).fetchone()[0]
