# SPDX-License-Identifier: BSD-3-Clause
"""The client's TAP side: the ADQL that finds images, and the server's list of archives.

An image archive of a casuvo instance is a TAP schema with an ``images`` table
(one row per image, with a pgSphere ``coverage`` footprint); images around a
position are those whose footprint INTERSECTS a circle, which the footprint's
GiST index answers.  pyvo is imported only when a query runs, so that this
module (and what imports it) loads where pyvo is absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from astropy import units as u
from astropy.table import Column, MaskedColumn, Table

from casuvo.client._angles import degrees, position
from casuvo.client.errors import ArchiveError

if TYPE_CHECKING:
    import pyvo

__all__ = ["DEFAULT_COLUMNS", "DEFAULT_RADIUS", "ID_COLUMN", "IMAGE_TYPES", "image_archives",
           "images_adql", "plain", "run_sync"]

#: Values of ``images.imagetype``.
IMAGE_TYPES: tuple[str, ...] = ("pawprint", "tile")
#: Cone radius of :meth:`Archive.query_radec` when none is given.
DEFAULT_RADIUS = 1 * u.arcmin
#: Columns :meth:`Archive.query_radec` returns: the talk's notebook columns first
#: (filename ... qcstatus), then what identifies an image and what cutouts need.
DEFAULT_COLUMNS: tuple[str, ...] = (
    "filename", "coords", "filtername", "surveyname", "nightobs", "totexptime",
    "obsfwhm", "obstatus", "qcstatus",
    "extnum", "extname", "imagetype", "object", "mjdobs", "ellipticity", "magzpt",
    "abmaglim", "centerAlpha", "centerDelta", "obs_publisher_did",
)
#: The column DataLink takes its IDs from (ObsCore's publisher DID).
ID_COLUMN = "obs_publisher_did"
#: The table every image archive has; its TAP schema is the archive's name.
IMAGES_TABLE = "images"


def _adql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def images_adql(table: str, ra: float | u.Quantity, dec: float | u.Quantity,
                radius: float | u.Quantity, *, band: str | Sequence[str] | None,
                imagetype: str | None, columns: Sequence[str]
                ) -> tuple[str, tuple[float, float, float]]:
    """(ADQL, (ra, dec, radius) in degrees) of the images of ``table`` around a position.

    Arguments are checked here, so a bad one is a :class:`ValueError` before
    any request; rows come sorted by night, file name and extension.
    """
    ra_deg, dec_deg = position(ra, dec)
    r_deg = degrees(radius, "radius")
    if not 0.0 < r_deg <= 180.0:
        raise ValueError(f"radius must be > 0 and ≤ 180 degrees, not {r_deg}")
    cols = list(dict.fromkeys([*columns, ID_COLUMN]))
    where = [f"1 = INTERSECTS(coverage, CIRCLE('ICRS', {ra_deg!r}, {dec_deg!r}, "
             f"{r_deg!r}))"]
    if band is not None:
        bands = [band] if isinstance(band, str) else list(band)
        if not bands:
            raise ValueError("band must name at least one filter")
        where.append(f"filtername IN ({', '.join(_adql_string(b) for b in bands)})")
    if imagetype is not None:
        if imagetype not in IMAGE_TYPES:
            raise ValueError(f"imagetype must be one of {', '.join(IMAGE_TYPES)}, "
                             f"not {imagetype!r}")
        where.append(f"imagetype = {_adql_string(imagetype)}")
    adql = (f"SELECT {', '.join(cols)} FROM {table} WHERE {' AND '.join(where)} "
            "ORDER BY nightobs, filename, extnum")
    return adql, (ra_deg, dec_deg, r_deg)


def run_sync(tap: pyvo.dal.TAPService, adql: str, what: str, maxrec: int | None = None
             ) -> pyvo.dal.TAPResults:
    """A sync TAP query; what goes wrong on the server's side becomes an ArchiveError.

    ``what`` names the query and the service in the message
    (``TAP query on vista.images at http://…/tap``).
    """
    import requests
    from pyvo.dal import DALAccessError

    try:
        return tap.run_sync(adql, maxrec=maxrec)
    except (DALAccessError, requests.RequestException) as exc:
        raise ArchiveError(f"{what} failed: {exc}") from exc


def image_archives(tap: pyvo.dal.TAPService, tap_url: str) -> tuple[str, ...]:
    """The image archives the server publishes: TAP schemas with an ``images`` table."""
    result = run_sync(tap, "SELECT table_name FROM TAP_SCHEMA.tables "
                           f"WHERE table_name LIKE '%.{IMAGES_TABLE}'",
                      f"TAP_SCHEMA query at {tap_url}")
    names = (str(row["table_name"]) for row in result)
    return tuple(sorted({n.rsplit(".", 1)[0] for n in names
                         if n.rsplit(".", 1)[-1] == IMAGES_TABLE}))


def plain(table: Table) -> Table:
    """Unmask columns that have nothing masked: cleaner display and arithmetic."""
    for name in table.colnames:
        col = table[name]
        if isinstance(col, MaskedColumn) and not np.any(col.mask):
            table[name] = Column(col.data.data, name=name, unit=col.unit,
                                 description=col.description, meta=col.meta)
    return table
