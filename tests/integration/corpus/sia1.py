# SPDX-License-Identifier: BSD-3-Clause
"""SIA 1.0 cases, for every ``sia1`` service of the endpoints.

Bad input: POS missing, malformed, NaN, infinite or out of range; SIZE
negative, zero, NaN, infinite, too wide or malformed; INTERSECT not one of
SIA 1.0's four; NUL in a text parameter.  Each gets HTTP 400 and the error
VOTable naming the parameter.  Valid input: POS/SIZE boxes whose images are
those whose pixels (astropy WCS of the files' headers) overlap the box, for
OVERLAPS and CENTER; FORMAT values SIA 1.0 defines (a MIME type nothing has
gives no rows, as the standard says); a TARGET of any Unicode content (not a
SIA 1.0 parameter: ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import requests

from tests.integration.corpus import Case, qs
from tests.integration.corpus import _dal as dal
from tests.integration.corpus.scs import error_naming

SERVICE = "sia1"


def images_overlapping(schema: str, ra: float, dec: float, half_width: float
                       ) -> Callable[[requests.Response], None]:
    """The answer's images are those overlapping the box, decided from the files' WCS."""

    def check(answer: requests.Response) -> None:
        got = [r["obs_publisher_did"] for r in dal.rows(answer)]
        assert len(got) == len(set(got))
        dal.assert_images(got, dal.expected_images(schema, ra, dec, half_width))

    return check


def no_images(answer: requests.Response) -> None:
    assert dal.rows(answer) == []


def _bad(url: str) -> Iterator[Case]:
    size = ("SIZE", "0.01")
    for label, value in (("pos-one-number", "10"), ("pos-three-numbers", "10,20,3"),
                         ("pos-text", "ICRS"), ("pos-ra-nan", "nan,20"),
                         ("pos-dec-nan", "10,NaN"), ("pos-dec-inf", "10,inf"),
                         ("pos-ra-inf", "-inf,20"), ("pos-dec-beyond-pole", "10,95"),
                         ("pos-dec-below-pole", "10,-90.01"), ("pos-ra-above-360", "400,20"),
                         ("pos-ra-negative", "-5,20"), ("pos-hex", "0x10,20")):
        yield Case(SERVICE, label, url, qs(("POS", value), size), check=error_naming("POS"))
    yield Case(SERVICE, "pos-missing", url, qs(size), check=error_naming("POS"))
    pos = ("POS", "10,20")
    for label, value in (("size-negative", "-1"), ("size-zero", "0"), ("size-nan", "nan"),
                         ("size-second-nan", "0.1,nan"), ("size-inf", "inf"),
                         ("size-too-wide", "20"), ("size-three", "0.1,0.1,0.1"),
                         ("size-text", "big")):
        yield Case(SERVICE, label, url, qs(pos, ("SIZE", value)), check=error_naming("SIZE"))
    yield Case(SERVICE, "size-missing", url, qs(pos), check=error_naming("SIZE"))
    for value in ("FOO", "overlap", ""):
        if value:
            yield Case(SERVICE, f"intersect-{value}", url,
                       qs(pos, size, ("INTERSECT", value)), check=error_naming("INTERSECT"))
    yield Case(SERVICE, "format-nul", url, qs(pos, size, ("FORMAT", "image/\0fits")),
               check=error_naming("FORMAT"))


def _valid(schema: str, url: str) -> Iterator[Case]:
    tile = dal.sample_image(schema, "tile")
    ra, dec = tile.centre()
    pos = ("POS", f"{ra!r},{dec!r}")
    yield Case(SERVICE, "box", url, qs(pos, ("SIZE", "0.004")), status=200,
               check=images_overlapping(schema, ra, dec, 0.002))
    yield Case(SERVICE, "box-two-sizes-overlaps", url,
               qs(pos, ("SIZE", "0.004,0.004"), ("INTERSECT", "OVERLAPS")), status=200,
               check=images_overlapping(schema, ra, dec, 0.002))
    yield Case(SERVICE, "box-format-fits", url, qs(pos, ("SIZE", "0.004"),
                                                    ("FORMAT", "image/fits")),
               status=200, check=images_overlapping(schema, ra, dec, 0.002))
    yield Case(SERVICE, "box-target-unicode", url,
               qs(pos, ("SIZE", "0.004"), ("TARGET", "NGC 6791 ✓ 北斗 Ω")), status=200,
               check=images_overlapping(schema, ra, dec, 0.002))
    yield Case(SERVICE, "box-format-metadata", url, qs(("FORMAT", "METADATA")), status=200,
               check=no_images)
    yield Case(SERVICE, "box-format-unserved", url,
               qs(pos, ("SIZE", "0.004"), ("FORMAT", "text/x-nothing")), status=200,
               check=no_images)
    yield Case(SERVICE, "pole", url, qs(("POS", "0,90"), ("SIZE", "1")), status=200,
               check=no_images)


def cases(endpoints: dict) -> Iterator[Case]:
    for schema, url in sorted(endpoints.get("sia1", {}).items()):
        yield from _bad(url)
        yield from _valid(schema, url)
