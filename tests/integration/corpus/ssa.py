# SPDX-License-Identifier: BSD-3-Clause
"""SSA 1.1 cases for every ``ssa`` service, and SODA/DataLink cases of the spectra.

Bad SSA input (POS malformed or beyond the pole, SIZE negative, zero, NaN or
too wide, a reversed BAND, an unknown FORMAT, a TIME that is no ISO date)
gets HTTP 400 and the DALI error VOTable naming the parameter.  Valid SSA
cones return exactly the spectra whose positions lie in them (the positions
from SQL on the collection's table, distances in numpy; SIZE is the cone's
diameter, as SSA 1.1 says).  A spectrum's SODA (``dlget``) refuses a reversed,
one-number or non-overlapping BAND, an unknown FORMAT and an unknown ID
with SODA's text/plain errors; its DataLink (``dlmeta``) refuses a missing
ID with DALI's error VOTable and answers an unknown one with a
NotFoundFault row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import requests

from tests.integration.corpus import Case, qs
from tests.integration.corpus import _dal as dal
from tests.integration.corpus.scs import error_naming
from tests.integration.corpus.soda import soda_error

SERVICE = "ssa"


def spectra_within(schema: str, ra: float, dec: float, radius: float
                   ) -> Callable[[requests.Response], None]:
    """The answer's spectra are those of ``<schema>.spectra`` within ``radius`` degrees."""
    rows = dal.sql(f"SELECT ssa_pubdid, ra, dec FROM {schema}.spectra")
    distance = dal.angular_distance(np.array([r[1] for r in rows], float),
                                    np.array([r[2] for r in rows], float), ra, dec)
    inside = {r[0] for r, d in zip(rows, distance, strict=True) if d < radius - 1e-7}
    edge = {r[0] for r, d in zip(rows, distance, strict=True) if abs(d - radius) <= 1e-7}

    def check(answer: requests.Response) -> None:
        got = {r["ssa_pubDID"] for r in dal.rows(answer)}
        assert got - edge == inside, (len(got), len(inside), sorted(got ^ inside)[:3])

    return check


def _sample(schema: str) -> tuple[str, float, float]:
    (did, ra, dec), = dal.sql(f"SELECT ssa_pubdid, ra, dec FROM {schema}.spectra"
                              " ORDER BY accref LIMIT 1")
    return did, float(ra), float(dec)


def _ssa(schema: str, url: str) -> Iterator[Case]:
    _, ra, dec = _sample(schema)
    pos = f"{ra!r},{dec!r}"
    for params, label, name in (
            ((("POS", "abc"),), "pos-text", "POS"),
            ((("POS", "10"),), "pos-one-number", "POS"),
            ((("POS", "10,95"),), "pos-beyond-pole", "POS"),
            ((("POS", "400,10"),), "pos-ra-above-360", "POS"),
            ((("POS", "nan,10"),), "pos-nan", "POS"),
            ((("POS", "10,10;GALACTIC"),), "pos-frame", "POS"),
            ((("POS", pos), ("SIZE", "-1")), "size-negative", "SIZE"),
            ((("POS", pos), ("SIZE", "0")), "size-zero", "SIZE"),
            ((("POS", pos), ("SIZE", "nan")), "size-nan", "SIZE"),
            ((("POS", pos), ("SIZE", "90")), "size-too-wide", "SIZE"),
            ((("POS", pos), ("SIZE", "wide")), "size-text", "SIZE"),
            ((("BAND", "6e-7/5e-7"),), "band-reversed", "BAND"),
            ((("BAND", "green"),), "band-text", "BAND"),
            ((("FORMAT", "image/nothing"),), "format-unknown", "FORMAT"),
            ((("TIME", "yesterday"),), "time-text", "TIME")):
        yield Case(SERVICE, label, url, qs(("REQUEST", "queryData"), *params),
                   check=error_naming(name))
    for radius in (0.001, 0.02, 0.2):
        yield Case(SERVICE, f"cone-{radius}", url,
                   qs(("REQUEST", "queryData"), ("POS", pos), ("SIZE", str(2 * radius))),
                   status=200, check=spectra_within(schema, ra, dec, radius))
    yield Case(SERVICE, "cone-empty-sky", url,
               qs(("REQUEST", "queryData"), ("POS", "10,10"), ("SIZE", "0.2")),
               status=200, check=spectra_within(schema, 10.0, 10.0, 0.1))


def _soda(schema: str, url: str) -> Iterator[Case]:
    did, _, _ = _sample(schema)
    for value, label in (("6e-7 5e-7", "band-reversed"), ("5e-7", "band-one-number"),
                         ("1e-9 2e-9", "band-off-spectrum"), ("nan 5e-7", "band-nan")):
        yield Case("soda", f"spectrum-{label}", url, qs(("ID", did), ("BAND", value)),
                   check=soda_error("UsageError", "BAND"))
    yield Case("soda", "spectrum-format-unknown", url,
               qs(("ID", did), ("FORMAT", "image/nothing")),
               check=soda_error("UsageError", "FORMAT"))
    yield Case("soda", "spectrum-id-unknown", url,
               qs(("ID", did.rsplit("/", 1)[0] + "/nothere.fits")), status=404,
               check=soda_error("NotFoundFault", "not"))
    yield Case("soda", "spectrum-id-missing", url, qs(("BAND", "5e-7 6e-7")),
               check=soda_error("UsageError", "ID"))


def _datalink(schema: str, url: str) -> Iterator[Case]:
    did, _, _ = _sample(schema)
    yield Case("datalink", "spectrum-id-missing", url, "", check=error_naming("ID"))
    bad = did.rsplit("/", 1)[0] + "/nothere.fits"

    def not_found(answer: requests.Response) -> None:
        rows = dal.rows(answer)
        assert rows and all((r["error_message"] or "").startswith("NotFoundFault")
                            for r in rows), rows[:2]

    yield Case("datalink", "spectrum-id-unknown", url, qs(("ID", bad)), status=200,
               check=not_found)


def cases(endpoints: dict) -> Iterator[Case]:
    spectroscopic = sorted(endpoints.get("ssa", {}).items())
    for schema, url in spectroscopic:
        yield from _ssa(schema, url)
        if schema in endpoints.get("soda", {}):
            yield from _soda(schema, endpoints["soda"][schema])
        if schema in endpoints.get("datalink", {}):
            yield from _datalink(schema, endpoints["datalink"][schema])
