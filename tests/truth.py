# SPDX-License-Identifier: BSD-3-Clause
"""The simulator's truth for service answers, computed in numpy (and the release truth)."""

from __future__ import annotations

import datetime
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

#: pgSphere compares with a 1e-9 rad tolerance (~0.2 mas); sources closer than
#: this to a cone's edge may legitimately fall on either side.
EDGE_DEG = 1e-7


@dataclass(frozen=True)
class ConeTruth:
    """Sources certainly inside a cone, and those that may be reported (edge cases)."""

    inside: set[int]
    allowed: set[int]

    def check(self, got: set[int]) -> None:
        missing = self.inside - got
        extra = got - self.allowed
        assert not missing, f"{len(missing)} true sources missing, e.g. {sorted(missing)[:3]}"
        assert not extra, f"{len(extra)} sources outside the cone, e.g. {sorted(extra)[:3]}"


def separation_deg(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Angular distance (haversine, stable for small angles) in degrees."""
    ra1, dec1 = np.radians(ra), np.radians(dec)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    hav = np.sin((dec1 - d0) / 2) ** 2 + np.cos(d0) * np.cos(dec1) * np.sin((ra1 - a0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(hav)))


def cone_truth(cat: Table, ra: float, dec: float, radius_deg: float) -> ConeTruth:
    """source_ids of the catalogue inside a cone."""
    sep = separation_deg(np.asarray(cat["ra"]), np.asarray(cat["dec"]), ra, dec)
    ids = np.asarray(cat["source_id"])
    return ConeTruth(set(ids[sep < radius_deg - EDGE_DEG].tolist()),
                     set(ids[sep < radius_deg + EDGE_DEG].tolist()))


def hidden_framesets(conn, merged: Path, code: int, schema: str,
                     owns: Callable[[str], bool]) -> set[int]:
    """frameSetIDs of a merged source file made from a tile its reader may not see.

    Computed without the archive's own frame-set table: the tiles are the
    file's PROVn cards, each tile's field, owner and release come from
    ``<schema>.images`` (``conn``: the unfiltered superuser), and a frame set is
    the VSA's survey code × 2^32 + CRC-32 of the field name.  ``owns(group)``
    says whether the reader is in the owning group.
    """
    header = fits.getheader(merged, 0)
    tiles = [str(header[k]) for k in header if k.startswith("PROV")]
    assert tiles, f"{merged}: no PROVn cards"
    today = datetime.date.today()
    hidden = set()
    for catname in tiles:
        row = conn.execute(f"SELECT object, owner_group, release_date FROM {schema}.images"
                           " WHERE catname = %s", (catname,)).fetchone()
        assert row, f"tile {catname} of {merged} is not in {schema}.images"
        obj, owner, released = row
        if released is not None and released > today and not owns(owner):
            hidden.add(code * 2**32 + zlib.crc32(obj.encode("utf-8")))
    return hidden
