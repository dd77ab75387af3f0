# SPDX-License-Identifier: BSD-3-Clause
"""The order of operations that brings the casuvo stack up and down.

Encoded here once, so ``casuvo up``, ``casuvo demo``, ``make demo`` and the
test suite all do the same thing: cluster, database, DaCHS configuration and
initialisation, publication of every RD in ``resdir/``, server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from casuvo.config import Settings
from casuvo.dachs import instance
from casuvo.storage import ledger, pgcluster
from casuvo.surveys.registry import load_registry

__all__ = ["ARCHIVE_DATA", "TableState", "archives", "down", "publish", "publish_archive",
           "table_states", "up"]

log = logging.getLogger(__name__)


def publish(settings: Settings, *, republish: bool = False) -> None:
    """Import each RD's tables once (then only their metadata) and publish it."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        # the archives' processing views read the ledger
        ledger.ensure_products_schema(conn)
        imported = {row[0] for row in conn.execute(
            "SELECT DISTINCT sourcerd FROM dc.tablemeta")}
    for name in instance.resource_names(settings):
        rd = f"{name}/q"
        instance.import_rd(settings, rd, meta_only=rd in imported and not republish)


#: the RD data elements an image archive is built from (``resdir/common/images.rd``)
ARCHIVE_DATA: tuple[str, ...] = ("import", "importAncillary")


def archives(settings: Settings) -> tuple[str, ...]:
    """The image archives: the collections of the registry's imaging surveys."""
    return tuple(s.collection for s in load_registry(settings).of_kind("imaging"))


def publish_archive(settings: Settings, survey: str) -> int:
    """(Re)build a survey's image archive (images, ancillary files, ObsCore) from its products.

    DaCHS's import replaces the archive's rows in one transaction per table, so
    a failure leaves the previous archive in place.  Returns the number of
    published images.
    """
    known = archives(settings)
    if survey not in known:
        raise ValueError(f"no image archive {survey!r}; known: {', '.join(known)}")
    instance.import_rd(settings, f"{survey}/q", data=ARCHIVE_DATA)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {survey}.images").fetchone()[0])


def up(settings: Settings, *, republish: bool = False) -> None:
    """Start everything, creating what does not exist yet; quick when all exists."""
    settings.var.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    pgcluster.ensure_running(settings)
    pgcluster.create_database(settings)
    instance.configure(settings)
    instance.ensure_initialised(settings)
    publish(settings, republish=republish)
    if republish:
        instance.stop_server(settings)
    instance.start_server(settings)


def down(settings: Settings) -> tuple[bool, bool]:
    """Stop the server, then the database; returns what was running."""
    server = instance.stop_server(settings)
    database = pgcluster.stop(settings)
    return server, database


@dataclass(frozen=True)
class TableState:
    """A published table and its size."""

    name: str
    rows: int
    rd: str


def table_states(settings: Settings) -> list[TableState]:
    """Row counts of every table DaCHS publishes from casuvo's RDs."""
    names = set(instance.resource_names(settings))
    states = []
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        for table, rd in conn.execute(
                "SELECT tablename, sourcerd FROM dc.tablemeta ORDER BY tablename"):
            if rd.split("/")[0] not in names:
                continue
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            states.append(TableState(table, rows, rd))
    return states
