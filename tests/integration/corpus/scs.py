# SPDX-License-Identifier: BSD-3-Clause
"""Simple Cone Search cases, for every ``scs`` service of the endpoints.

Bad input: coordinates out of range (latitudes beyond ±90), negative or
too wide radii, NaN and infinities, missing parameters, a VERB outside
1–3; each must get HTTP 400 and SCS's error document naming the parameter.
Valid input: cones whose rows are the table's rows within the radius,
computed from SQL on the same table with the distance in numpy.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import requests

from tests.integration.corpus import Case, qs
from tests.integration.corpus import _dal as dal

SERVICE = "scs"


def error_naming(*names: str) -> Callable[[requests.Response], None]:
    """The answer is a VOTable error document whose message names one of ``names``."""

    def check(answer: requests.Response) -> None:
        text = answer.text
        assert "<VOTABLE" in text, text[:300]
        found = (re.search(r'name="Error"[^>]*value="([^"]*)"', text)
                 or re.search(r'name="QUERY_STATUS"[^>]*value="ERROR"[^>]*>([^<]*)<', text))
        assert found, f"no error message in {text[:500]}"
        message = html.unescape(found.group(1)).lower()
        assert any(n.lower() in message for n in names), (names, message)

    return check


def cone_matches(table: str, ra: float, dec: float, sr: float
                 ) -> Callable[[requests.Response], None]:
    """The cone's rows are the table's sources within ``sr`` degrees of (ra, dec)."""

    def check(answer: requests.Response) -> None:
        ident = dal.main_columns(table)[0].lower()
        got = {str(v) for r in dal.rows(answer) for k, v in r.items() if k.lower() == ident}
        inside, edge = ({str(i) for i in ids} for ids in dal.cone_ids(table, ra, dec, sr))
        assert got - edge == inside - edge, (
            f"{len(got)} rows, expected {len(inside)}: missing"
            f" {sorted(inside - got)[:3]}, extra {sorted(got - inside - edge)[:3]}")

    return check


def _bad(url: str) -> Iterator[Case]:
    good = {"RA": "10", "DEC": "-20", "SR": "0.01"}
    for name, value, label in (
            ("DEC", "100", "dec-beyond-pole"), ("DEC", "-90.0001", "dec-below-pole"),
            ("DEC", "nan", "dec-nan"), ("DEC", "inf", "dec-inf"), ("DEC", "abc", "dec-text"),
            ("RA", "400", "ra-above-360"), ("RA", "-1", "ra-negative"),
            ("RA", "NaN", "ra-nan"), ("RA", "-Infinity", "ra-minus-inf"),
            ("RA", "", "ra-empty"),
            ("SR", "-1", "sr-negative"), ("SR", "20", "sr-too-wide"),
            ("SR", "nan", "sr-nan"), ("SR", "inf", "sr-inf"), ("SR", "1e400", "sr-overflow")):
        pars = {**good, name: value}
        yield Case(SERVICE, label, url, qs(*pars.items()), check=error_naming(name))
    for missing in ("RA", "DEC", "SR"):
        pars = [(k, v) for k, v in good.items() if k != missing]
        yield Case(SERVICE, f"missing-{missing.lower()}", url, qs(*pars),
                   check=error_naming(missing))
    for verb in ("0", "4", "x"):
        yield Case(SERVICE, f"verb-{verb}", url, qs(*good.items(), ("VERB", verb)),
                   check=error_naming("verb"))


def _valid(table: str, url: str) -> Iterator[Case]:
    ra, dec = dal.sample_source(table)
    for sr, verb in ((0.01, "2"), (0.003, "3")):
        yield Case(SERVICE, f"cone-{sr}-verb{verb}", url,
                   qs(("RA", repr(ra)), ("DEC", repr(dec)), ("SR", str(sr)), ("VERB", verb)),
                   status=200, check=cone_matches(table, ra, dec, sr))
    # the limits themselves are valid (and hold nothing in the demo fields)
    for label, (ra_, dec_, sr) in {"north-pole": (0.0, 90.0, 1.0),
                                   "south-pole-ra-360": (360.0, -90.0, 0.5),
                                   "zero-radius": (ra, dec, 0.0)}.items():
        yield Case(SERVICE, label, url, qs(("RA", repr(ra_)), ("DEC", repr(dec_)),
                                           ("SR", repr(sr))),
                   status=200, check=cone_matches(table, ra_, dec_, sr))


def cases(endpoints: dict) -> Iterator[Case]:
    for table, url in sorted(endpoints.get("scs", {}).items()):
        yield from _bad(url)
        yield from _valid(table, url)
