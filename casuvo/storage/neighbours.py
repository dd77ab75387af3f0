# SPDX-License-Identifier: BSD-3-Clause
"""A survey's neighbour-table catalogue, ``<survey>.required_neighbours`` (VSA style).

One row per neighbour table of the survey says what it pairs (master and slave
tables), with which join criterion and radius, how epochs were handled, and
how many pairs and masters the last load put in it.  ``casuvo xmatch`` rewrites
the row after each load of ``<survey>.sources_x_gaia``; both tables are
declared by the survey's RD (``create_neighbours``).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from casuvo.storage.tables import index_count

__all__ = ["NeighbourTableEntry", "is_registered", "register", "tables_complete"]

#: Tables of the survey schema that the RD's ``create_neighbours`` makes.
NEIGHBOUR_TABLES = ("sources_x_gaia", "required_neighbours")
#: Their indexes: masterObjID, slaveObjID and the catalogue's primary key.
NEIGHBOUR_INDEXES = 3
#: How the Gaia positions are brought to the survey's epoch (the engine's rule).
EPOCH_RULE = ("Gaia positions moved with their proper motions from ref_epoch to the mean "
              "epoch of the master source's band detections")


@dataclass(frozen=True)
class NeighbourTableEntry:
    """The catalogue row of one neighbour table."""

    neighbour_table: str
    master_table: str
    slave_table: str
    radius_arcsec: float
    n_pairs: int
    n_masters: int


def tables_complete(dsn: str, schema: str) -> bool:
    """True if ``schema`` has both neighbour tables with all their indexes."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return index_count(conn, schema, NEIGHBOUR_TABLES) >= NEIGHBOUR_INDEXES


def is_registered(dsn: str, schema: str, neighbour_table: str) -> bool:
    """True if ``<schema>.required_neighbours`` has a row for ``neighbour_table``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE neighbourtable = %s").format(
                sql.Identifier(schema, "required_neighbours")), (neighbour_table,)
        ).fetchone() is not None


def register(dsn: str, schema: str, entry: NeighbourTableEntry) -> None:
    """Replace the catalogue row of ``entry.neighbour_table`` (one transaction)."""
    catalogue = sql.Identifier(schema, "required_neighbours")
    with psycopg.connect(dsn) as conn:
        _replace(conn, catalogue, entry)


def _replace(conn: psycopg.Connection, catalogue: sql.Identifier,
             entry: NeighbourTableEntry) -> None:
    conn.execute(sql.SQL("DELETE FROM {} WHERE neighbourtable = %s").format(catalogue),
                 (entry.neighbour_table,))
    conn.execute(
        sql.SQL("INSERT INTO {} (neighbourtable, mastertable, slavetable, joincriterion,"
                " radius, epochrule, npairs, nmasters, built)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() AT TIME ZONE 'UTC')"
                ).format(catalogue),
        (entry.neighbour_table, entry.master_table, entry.slave_table,
         entry.radius_arcsec / 3600.0, entry.radius_arcsec, EPOCH_RULE, entry.n_pairs,
         entry.n_masters))
