# SPDX-License-Identifier: BSD-3-Clause
"""A notebook client for casuvo's image archives: find images around a position, cut them out.

This is the ``VISTADB().query_radec`` client of the CASU talk, rebuilt on the
IVOA standards so that it works against any casuvo instance (and, for the
most part, any DaCHS image archive) without knowing its service paths::

    from casuvo.client import Archive

    vista = Archive("vista")                      # base URL from CASUVO_* settings
    images = vista.query_radec(194.30, -64.75)    # astropy Table, one row per image
    cutouts = vista.cutouts(images[:12], 194.30, -64.75, size=30 * u.arcsec)

How it finds the services:

- TAP is at ``<base>/tap`` (DaCHS's fixed location, as in every casuvo instance);
  :meth:`Archive.query_radec` runs ADQL on ``<archive>.images`` there
  (:mod:`casuvo.client.tap`).
- The TAP result carries a DataLink service descriptor; :meth:`Archive.cutouts`
  asks that service for the DataLink documents of the chosen images and takes
  from each its SODA sync service descriptor (:mod:`casuvo.client.datalink`),
  then fetches the cutouts in parallel on Dask (:mod:`casuvo.client.cutouts`).
  No SODA or DataLink path is written here.

Which archives exist is the **server's** answer, not the survey registry's.
The client runs on astronomers' machines, against a data centre that may be
another installation than any checkout at hand: a ``pip``-installed client has
no ``pipelines/<survey>/config.toml`` at all, and a local registry may list
surveys the remote server does not publish (or miss ones it does).  Only the
server knows its archives, and it says so in TAP_SCHEMA (a schema with an
``images`` table is an image archive: :meth:`Archive.archives`).  So
``Archive(name)`` makes no request: it checks only that ``name`` is a TAP schema
name, and a survey added to the server by a config file is reachable at once.
When the server refuses a query on the archive, the client asks TAP_SCHEMA
whether it has that archive, and says :class:`UnknownArchiveError` (a
ValueError too) naming the archives it has — so a typo costs one extra
request, and a good name none.

Choices, and why:

- **astropy Table, not pandas.**  The service environment (DaCHS's numpy 1.26)
  has no pandas; ``Table.to_pandas()`` is there for those who install it.  A
  Table keeps the units and descriptions the service declares.
- **Cutouts run as a Dask graph** of plain HTTP fetches; a failed cutout raises
  :class:`CutoutError` naming every failed image, or with ``on_error="warn"``
  becomes ``None`` (see :mod:`casuvo.client.cutouts`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from astropy import units as u
from astropy.table import Row, Table

from casuvo.client import datalink
from casuvo.client._angles import angles, degrees, per_row
from casuvo.client.bulk import BULK_THRESHOLD, bulk_cutouts
from casuvo.client.cutouts import (
    DEFAULT_SIZE,
    Cutout,
    CutoutRequest,
    basic_auth,
    cutout_label,
    fetch_cutouts,
    row_values,
    soda_requests,
)
from casuvo.client.errors import ArchiveError, UnknownArchiveError
from casuvo.client.tap import (
    DEFAULT_COLUMNS,
    DEFAULT_RADIUS,
    ID_COLUMN,
    image_archives,
    images_adql,
    plain,
    run_sync,
)

if TYPE_CHECKING:
    import pyvo
    import requests
    from astropy.io.votable.tree import Resource

    from casuvo.config import Settings

__all__ = ["Archive", "CutoutRequest"]

#: What an archive name must look like: an ADQL regular identifier (a TAP schema).
_ARCHIVE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class Archive:
    """One casuvo image archive (``"vista"``, ``"vst"``, ...) at a server's base URL.

    Parameters
    ----------
    name:
        The archive: the TAP schema of its ``images`` table.  Checked against
        the server's archives (:meth:`archives`) only when a query fails, so
        constructing an Archive makes no request (see the module notes).
    base_url:
        The server root (e.g. ``http://localhost:8080``); by default the
        ``server_url`` of ``settings`` or of :meth:`Settings.from_env`.
    settings:
        casuvo settings to take the default base URL from.
    session:
        A ``requests`` session for TAP and DataLink (e.g. with credentials for
        proprietary data: its basic-auth credentials go with the SODA fetches too).
    timeout:
        Seconds to wait for one SODA cutout.
    """

    def __init__(self, name: str, base_url: str | None = None, *,
                 settings: Settings | None = None,
                 session: requests.Session | None = None, timeout: float = 60.0) -> None:
        if not isinstance(name, str) or not _ARCHIVE_NAME.fullmatch(name):
            raise ValueError(f"archive name must be a TAP schema name such as 'vista', "
                             f"not {name!r}")
        if base_url is None:
            from casuvo.config import Settings

            base_url = (settings or Settings.from_env()).server_url
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self._session = session
        self._tap: pyvo.dal.TAPService | None = None
        self._datalink: tuple[Resource, str] | None = None

    def __repr__(self) -> str:
        return f"Archive({self.name!r}, {self.base_url!r})"

    @property
    def tap_url(self) -> str:
        """The TAP service: DaCHS's fixed ``<base>/tap``."""
        return self.base_url + "/tap"

    @property
    def table(self) -> str:
        """The archive's image table (one row per image) in TAP."""
        return f"{self.name}.images"

    @property
    def tap(self) -> pyvo.dal.TAPService:
        if self._tap is None:
            import pyvo

            self._tap = pyvo.dal.TAPService(self.tap_url, session=self._session)
        return self._tap

    def archives(self) -> tuple[str, ...]:
        """The image archives the server publishes (from its TAP_SCHEMA), sorted."""
        return image_archives(self.tap, self.tap_url)

    # -- finding images ---------------------------------------------------------------

    def query_radec(self, ra: float | u.Quantity, dec: float | u.Quantity,
                    radius: float | u.Quantity = DEFAULT_RADIUS, *,
                    band: str | Sequence[str] | None = None,
                    imagetype: str | None = None,
                    columns: Sequence[str] = DEFAULT_COLUMNS,
                    maxrec: int = 100_000) -> Table:
        """The images whose footprint overlaps the circle ``radius`` around (ra, dec).

        ``ra``, ``dec`` and ``radius`` are degrees (ICRS) or angular Quantities.
        A small radius (say 0.1″) gives the images that contain the position.
        ``band`` keeps one filter or several (``filtername``, e.g. ``"Ks"``);
        ``imagetype`` keeps ``"pawprint"`` (one detector of a stacked pawprint) or
        ``"tile"``.  Rows come sorted by night, file name and extension, so the
        same query gives the same table; no image is an empty table, not an error.
        """
        adql, (ra_deg, dec_deg, r_deg) = images_adql(
            self.table, ra, dec, radius, band=band, imagetype=imagetype, columns=columns)
        result = self._run_tap(adql, maxrec=maxrec)
        self._datalink = datalink.descriptor(result) or self._datalink
        table = plain(result.to_table())
        table.meta.update({"archive": self.name, "base_url": self.base_url,
                           "ra": ra_deg, "dec": dec_deg, "radius": r_deg})
        return table

    def _run_tap(self, adql: str, maxrec: int | None = None) -> pyvo.dal.TAPResults:
        """A sync TAP query on the archive; an archive the server lacks is said so."""
        try:
            return run_sync(self.tap, adql, f"TAP query on {self.table} at {self.tap_url}",
                            maxrec=maxrec)
        except ArchiveError as exc:
            self._check_known(exc)
            raise

    def _check_known(self, failure: ArchiveError) -> None:
        """After a refused query: UnknownArchiveError if the server has no such archive.

        Only when the server answered with a TAP error document: an unreachable
        server is not asked again.
        """
        from pyvo.dal import DALQueryError

        if not isinstance(failure.__cause__, DALQueryError):
            return
        try:
            known = self.archives()
        except ArchiveError:
            return  # the server cannot say either; the query's own error stands
        if self.name not in known:
            raise UnknownArchiveError(
                f"unknown archive {self.name!r}: the image archives at {self.base_url} are "
                f"{', '.join(known) or 'none'}") from failure

    def _datalink_service(self) -> tuple[Resource, str]:
        """The DataLink descriptor, from the last query or a one-row TAP query."""
        if self._datalink is None:
            self._datalink = datalink.descriptor(self._run_tap(
                f"SELECT TOP 1 {ID_COLUMN} FROM {self.table}"))
        if self._datalink is None:
            raise ArchiveError(
                f"{self.tap_url} declares no DataLink service for {self.table}: "
                "no cutouts without one")
        return self._datalink

    # -- cutouts -------------------------------------------------------------------------

    def cutout_requests(self, rows: Table | Row | Iterable[Mapping[str, Any]],
                        ra: float | u.Quantity | Sequence[float],
                        dec: float | u.Quantity | Sequence[float],
                        size: float | u.Quantity = DEFAULT_SIZE,
                        ) -> tuple[list[CutoutRequest | tuple[str, str]], list[dict[str, Any]]]:
        """The SODA request, or (image, why there is none), for each row, via DataLink.

        ``ra``/``dec`` are one position for all rows or one per row.  SODA gets
        ``CIRCLE ra dec size/2``, whose bounding box is what the service cuts: a
        square about ``size`` wide, cropped at the image edges.
        """
        row_list = [rows] if isinstance(rows, Row) else list(rows)
        values = [row_values(r) for r in row_list]
        n = len(values)
        ras = per_row(angles(ra, "ra"), n, "ra")
        decs = per_row(angles(dec, "dec"), n, "dec")
        half = degrees(size, "size") / 2.0
        if not 0.0 < half <= 90.0:
            raise ValueError(f"size must be > 0 and ≤ 180 degrees, not {2 * half}")
        if not n:
            return [], []
        resource, id_column = self._datalink_service()
        ref = datalink.id_param_ref(resource) or id_column
        for row in values:
            if id_column not in row:
                raise ValueError(f"rows need the {id_column!r} column (Archive.query_radec "
                                 "returns it) to find their cutout service")
        ids = [str(row[id_column]) for row in values]
        soda = datalink.soda_services(resource, ref, ids, self._session)
        reqs = soda_requests(values, ids, soda, ras, decs, half, timeout=self.timeout,
                             headers=basic_auth(self._session, self.base_url))
        return reqs, values

    def cutouts(self, rows: Table | Row | Iterable[Mapping[str, Any]],
                ra: float | u.Quantity | Sequence[float],
                dec: float | u.Quantity | Sequence[float],
                size: float | u.Quantity = DEFAULT_SIZE, *,
                scheduler: Any = None, num_workers: int = 8,
                on_error: Literal["raise", "warn"] = "raise",
                bulk: bool | None = None) -> list[Cutout | None]:
        """SODA cutouts of ``rows`` around (ra, dec), fetched in parallel, in row order.

        ``rows`` is (a slice of) the table :meth:`query_radec` returns, or rows of
        it.  ``size`` is the cutout's full width (degrees or an angle); the
        service crops it at the image's edges.  ``ra``/``dec`` may also give one
        position per row.

        ``scheduler`` goes to ``dask.compute``: by default the active
        ``distributed`` client if one is the default, otherwise ``num_workers``
        threads; ``"synchronous"`` fetches one after the other; a
        ``distributed.Client`` runs the fetches on its workers.  A failed cutout
        raises :class:`CutoutError` naming every failed image (``on_error="raise"``)
        or becomes ``None`` with one :class:`CutoutWarning` (``on_error="warn"``).

        More than :data:`~casuvo.client.bulk.BULK_THRESHOLD` cutouts (or
        ``bulk=True``) go to the server as one bulk cutout job
        (:mod:`casuvo.client.bulk`): the same cutouts, the same return value,
        one upload and one download instead of a request per cutout
        (``scheduler`` and ``num_workers`` then do not apply); ``bulk=False``
        always makes SODA requests.
        """
        if on_error not in ("raise", "warn"):
            raise ValueError(f"on_error must be 'raise' or 'warn', not {on_error!r}")
        row_list = [rows] if isinstance(rows, Row) else list(rows)
        if bulk or (bulk is None and len(row_list) > BULK_THRESHOLD):
            return self._bulk_cutouts(row_list, ra, dec, size, on_error)
        reqs, values = self.cutout_requests(row_list, ra, dec, size)
        return fetch_cutouts(reqs, values, scheduler=scheduler, num_workers=num_workers,
                             on_error=on_error)

    def _bulk_cutouts(self, rows: list[Any], ra: float | u.Quantity | Sequence[float],
                      dec: float | u.Quantity | Sequence[float], size: float | u.Quantity,
                      on_error: Literal["raise", "warn"]) -> list[Cutout | None]:
        """:meth:`cutouts` through one bulk cutout job (same checks, same return value)."""
        values = [row_values(r) for r in rows]
        n = len(values)
        ras = per_row(angles(ra, "ra"), n, "ra")
        decs = per_row(angles(dec, "dec"), n, "dec")
        width = degrees(size, "size")
        if not 0.0 < width / 2.0 <= 90.0:
            raise ValueError(f"size must be > 0 and ≤ 180 degrees, not {width}")
        if not n:
            return []
        for row in values:
            if ID_COLUMN not in row:
                raise ValueError(f"rows need the {ID_COLUMN!r} column (Archive.query_radec "
                                 "returns it) to name their images")
        dids = [str(row[ID_COLUMN]) for row in values]
        labels = [cutout_label(row, did) for row, did in zip(values, dids, strict=True)]
        return bulk_cutouts(self.base_url, self._session, self.name, dids, labels, ras, decs,
                            width, values, timeout=self.timeout, on_error=on_error)


def __getattr__(name: str) -> Any:
    """``KNOWN_ARCHIVES``, deprecated: the image archives of the *local* survey registry.

    The client no longer keeps a list of archives (see the module notes); this
    answers what the registry of the local settings describes, which is what
    this installation's own server publishes.  Ask the server instead:
    :meth:`Archive.archives`.
    """
    if name == "KNOWN_ARCHIVES":
        warnings.warn("casuvo.client.KNOWN_ARCHIVES is deprecated: the server says which "
                      "archives it has (Archive(...).archives())", DeprecationWarning,
                      stacklevel=2)
        from casuvo.surveys.registry import load_registry

        return tuple(s.collection for s in load_registry().of_kind("imaging"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
