# SPDX-License-Identifier: BSD-3-Clause
"""The order of operations that brings the casuvo stack up and down.

Encoded here once, so ``casuvo up``, ``casuvo demo``, ``make demo`` and the
test suite all do the same thing: cluster, database, DaCHS configuration and
initialisation, publication of every RD in ``resdir/``, server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from casuvo._version import __version__
from casuvo.config import Settings
from casuvo.dachs import instance
from casuvo.storage import access as release_control
from casuvo.storage import ledger, pgcluster, releases, uptodate
from casuvo.storage.tables import row_count
from casuvo.surveys.registry import load_registry

if TYPE_CHECKING:
    from casuvo.archive.imagemeta import ImageFile

__all__ = ["ARCHIVE_DATA", "SPECTRA_DATA", "SPECTRA_TABLES", "ArchiveState", "TableState",
           "archive_fingerprint", "archives",
           "down", "publish", "publish_archive", "publish_spectra", "spectra_fingerprint",
           "spectroscopic_archives", "table_states", "up"]

log = logging.getLogger(__name__)


def rd_fingerprint(settings: Settings, name: str) -> uptodate.Fingerprint:
    """What publishing ``resdir/<name>/q.rd`` depends on.

    The RD and its resource directory, the shared RD pieces, the survey configs
    and the casuvo code the RDs call at import time (registry, DaCHS hooks),
    and the versions of casuvo and DaCHS.
    """
    from importlib.metadata import version

    home = settings.home
    files = [*(home / "resdir" / name).rglob("*"), *(home / "resdir" / "common").rglob("*"),
             *(home / "pipelines").glob("*/*.toml"), *(home / "casuvo" / "dachs").glob("*.py"),
             *(home / "casuvo" / "surveys").glob("*.py")]
    inputs = sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts)
    return uptodate.fingerprint(f"rd:{name}/q", inputs,
                                {"casuvo": __version__, "dachs": version("gavodachs")})


def publish(settings: Settings, *, republish: bool = False) -> None:
    """Import each RD's tables once (then only their metadata) and publish it.

    An RD already imported and published whose inputs (:func:`rd_fingerprint`)
    are unchanged since is skipped: each ``dachs`` command costs seconds, and
    ``casuvo up`` on an unchanged instance should take none.
    """
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        # the archives' processing views read the ledger, the releases RD its releases
        ledger.ensure_products_schema(conn)
        release_control.protect_ledger(conn)
        releases.ensure_schema(conn)
        imported = {row[0] for row in conn.execute(
            "SELECT DISTINCT sourcerd FROM dc.tablemeta")}
        published = {row[0] for row in conn.execute(
            "SELECT DISTINCT sourcerd FROM dc.resources")}
    for name in instance.resource_names(settings):
        rd = f"{name}/q"
        fp = rd_fingerprint(settings, name)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            if (not republish and rd in published
                    and uptodate.current_build(conn, fp) is not None):
                continue
        instance.import_rd(settings, rd, meta_only=rd in imported and not republish)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            uptodate.record_build(conn, fp)


#: the RD data elements an image archive is built from (``resdir/common/images.rd``;
#: its raw frames: ``rawframes.rd``)
ARCHIVE_DATA: tuple[str, ...] = ("import", "importAncillary", "importRaw")


def archives(settings: Settings) -> tuple[str, ...]:
    """The image archives: the collections of the registry's imaging surveys."""
    return tuple(s.collection for s in load_registry(settings).of_kind("imaging"))


@dataclass(frozen=True)
class ArchiveState:
    """A survey's image archive after :func:`publish_archive`."""

    survey: str
    images: int
    """Rows of ``<survey>.images`` (one per image extension)."""
    ancillary: int
    """Rows of ``<survey>.ancillary`` (confidence maps and catalogues)."""
    published: bool
    """False: the archive was up to date and nothing was imported."""
    seconds: float | None
    """How long the import took (the recorded one's, when nothing was imported)."""


def _products(settings: Settings, survey: str) -> list[ImageFile]:
    """The finished image products an archive publishes (survey: the collection)."""
    from casuvo.archive.imagemeta import image_files

    key = load_registry(settings).by_collection(survey).key
    return image_files(settings.data_dir / "products" / key)


def archive_fingerprint(settings: Settings, survey: str) -> uptodate.Fingerprint:
    """What a survey's image archive is made from; an archive built from the same is current.

    The inputs are the finished products' files the image and ancillary records
    are read from (science images, confidence maps, catalogues), the RDs
    DaCHS imports the archive with (``resdir/<survey>/q.rd`` and the shared
    ``resdir/common/*.rd``) and the survey's config file (its names and camera
    are in the records), all by SHA-256; the parameters are casuvo's version
    (the code that makes the records), the ledger's processing run of each
    product (the records' ``run_id``) and the release dates runs gave
    (``casuvo pipeline run --release-date``).
    """
    from casuvo.archive.imagemeta import ledger_release_overrides, ledger_runs

    entry = load_registry(settings).by_collection(survey)
    files = [path for product in _products(settings, survey)
             for path in (product.path, product.conf, product.catalogue) if path.exists()]
    rds = settings.home / "resdir"
    inputs = [*files, rds / survey / "q.rd", *sorted((rds / "common").glob("*.rd")),
              entry.source]
    return uptodate.fingerprint(f"archive:{survey}", inputs, {
        "casuvo": __version__, "runs": ledger_runs(settings.dsn, survey),
        "releases": ledger_release_overrides(settings.dsn, entry.key)})


def publish_archive(settings: Settings, survey: str, *, force: bool = False) -> ArchiveState:
    """(Re)build a survey's image archive (images, ancillary files, ObsCore) from its products.

    Skipped when the ledger says the archive is current (:func:`archive_fingerprint`
    unchanged, both tables holding the rows the last import left, the previews
    it wrote unchanged); ``force`` imports regardless.  DaCHS's import replaces
    the archive's rows in one transaction per table, so a failure leaves the
    previous archive in place.
    """
    known = archives(settings)
    if survey not in known:
        raise ValueError(f"no image archive {survey!r}; known: {', '.join(known)}")
    fp = archive_fingerprint(settings, survey)
    tables = {"images": f"{survey}.images", "ancillary": f"{survey}.ancillary"}
    previews = sorted({f.path.parent / "previews" for f in _products(settings, survey)})

    def build() -> dict[str, int]:
        instance.import_rd(settings, f"{survey}/q", data=ARCHIVE_DATA)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            return {name: row_count(conn, table) or 0 for name, table in tables.items()}

    outcome = uptodate.ensure_current(settings.dsn, fp, previews, build,
                                      tables=tables.values(), force=force)
    rows = outcome.result
    return ArchiveState(survey, int(rows["images"]), int(rows["ancillary"]),
                        not outcome.skipped, outcome.build.seconds)


#: the RD data elements a spectroscopic archive is built from (``resdir/common/spectra.rd``)
SPECTRA_DATA: tuple[str, ...] = ("importObs", "importTargets", "importSpectra",
                                 "importObProducts", "importRaw")
#: its tables (``<collection>.<table>``); ``spectra`` is the SSA view of ``spectra_meta``
SPECTRA_TABLES: tuple[str, ...] = ("obs_blocks", "targets", "spectra_meta", "ob_products",
                                   "raw")


def spectroscopic_archives(settings: Settings) -> tuple[str, ...]:
    """The spectroscopic archives: the collections of the registry's spectroscopic surveys."""
    return tuple(s.collection for s in load_registry(settings).of_kind("spectroscopy"))


def spectra_fingerprint(settings: Settings, survey: str) -> uptodate.Fingerprint:
    """What a spectroscopic archive is made from: its index tables, RDs and config.

    The pipeline rewrites the index tables (``products/<key>/index/*.fits``)
    at the end of every run that changed a product, so they stand for the
    products; hashing every spectrum file would cost more than the import.
    """
    entry = load_registry(settings).by_collection(survey)
    index = settings.data_dir / "products" / entry.key / "index"
    rds = settings.home / "resdir"
    inputs = [*sorted(p for p in index.glob("*.fits") if p.is_file()),
              rds / survey / "q.rd", *sorted((rds / "common").glob("*.rd")), entry.source]
    return uptodate.fingerprint(f"spectra:{survey}", inputs, {"casuvo": __version__})


def publish_spectra(settings: Settings, survey: str, *, force: bool = False) -> dict[str, int]:
    """(Re)build a spectroscopic archive (OBs, fibres, spectra, per-OB and raw files, ObsCore).

    Skipped when :func:`spectra_fingerprint` is unchanged and the tables hold
    the rows the last import left; returns the row count of each table.
    DaCHS's import replaces each table's rows in one transaction.
    """
    known = spectroscopic_archives(settings)
    if survey not in known:
        raise ValueError(f"no spectroscopic archive {survey!r}; known: {', '.join(known)}")
    tables = {name: f"{survey}.{name}" for name in SPECTRA_TABLES}

    def build() -> dict[str, int]:
        instance.import_rd(settings, f"{survey}/q", data=SPECTRA_DATA)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            return {name: row_count(conn, table) or 0 for name, table in tables.items()}

    outcome = uptodate.ensure_current(settings.dsn, spectra_fingerprint(settings, survey), [],
                                      build, tables=tables.values(), force=force)
    return {name: int(n) for name, n in outcome.result.items()}


def up(settings: Settings, *, republish: bool = False) -> None:
    """Start everything, creating what does not exist yet; quick when all exists."""
    settings.var.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    pgcluster.ensure_running(settings)
    pgcluster.create_database(settings)
    instance.configure(settings)
    instance.ensure_initialised(settings)
    instance.ensure_user_uws(settings)
    release_control.install(settings.dsn, settings.db_name)
    instance.ensure_users(settings)
    publish(settings, republish=republish)
    if republish:
        instance.stop_server(settings)
    instance.start_server(settings)


def down(settings: Settings) -> tuple[bool, bool]:
    """Stop the server, then the database; returns what was running.

    A read replica and its DaCHS (``casuvo replica up``) stop first, so no
    server is left reading, or a standby retrying, a primary that is gone.
    """
    from casuvo.dachs import readonly
    from casuvo.storage import replica

    readonly.stop(settings)
    replica.down(settings)
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
