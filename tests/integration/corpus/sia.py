# SPDX-License-Identifier: BSD-3-Clause
"""SIA 2.0 cases, for every ``sia`` service of the endpoints.

Bad input: POS empty, malformed, of an unknown shape, with a negative radius,
a latitude beyond ±90 or NaN; BAND, TIME, EXPTIME, FOV, SPATRES (and the other
DALI intervals) reversed, NaN or not numbers; CALIB not a level; text
parameters with a NUL; MAXREC not a number.  Each gets HTTP 400 and DALI's
error VOTable naming the parameter.  Valid input: POS queries whose images
are those whose pixels (astropy WCS of the product files' headers) overlap
the region, alone and combined with CALIB, TIME, BAND, COLLECTION and ID.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import requests

from tests.integration.corpus import Case, qs
from tests.integration.corpus import _dal as dal
from tests.integration.corpus.scs import error_naming

SERVICE = "sia"


def images_overlapping(schema: str, ra: float, dec: float, radius: float,
                       keep: Callable[[dal.Image], bool] = lambda image: True
                       ) -> Callable[[requests.Response], None]:
    """The answer's images are those of the collection overlapping the circle
    (and passing ``keep``), decided from the files' WCS."""

    def check(answer: requests.Response) -> None:
        expected = dal.expected_images(schema, ra, dec, radius)
        kept = {i.did for i in dal.images(schema) if keep(i)}
        expected = {k: v & kept for k, v in expected.items()}
        expected["out"] |= {i.did for i in dal.images(schema)} - kept
        dal.assert_images((r["obs_publisher_did"] for r in dal.rows(answer)), expected)

    return check


def _bad(url: str) -> Iterator[Case]:
    for label, value in (
            ("pos-empty", ""), ("pos-blank", "   "), ("pos-shape-only", "CIRCLE"),
            ("pos-circle-two-numbers", "CIRCLE 10 20"),
            ("pos-circle-four-numbers", "CIRCLE 10 20 1 2"),
            ("pos-circle-text", "CIRCLE a b c"),
            ("pos-circle-negative-radius", "CIRCLE 10 20 -1"),
            ("pos-circle-zero-radius", "CIRCLE 10 20 0"),
            ("pos-circle-beyond-pole", "CIRCLE 10 95 0.1"),
            ("pos-circle-below-pole", "CIRCLE 10 -90.5 0.1"),
            ("pos-circle-nan", "CIRCLE NaN 20 0.1"), ("pos-circle-nan-radius", "CIRCLE 10 20 nan"),
            ("pos-circle-inf", "CIRCLE 10 inf 0.1"),
            ("pos-range-reversed-dec", "RANGE 10 11 30 20"),
            ("pos-range-beyond-pole", "RANGE 10 11 80 100"),
            ("pos-range-nan", "RANGE 10 nan 20 30"),
            ("pos-polygon-two-points", "POLYGON 10 20 11 20"),
            ("pos-polygon-odd", "POLYGON 10 20 11 20 11"),
            ("pos-polygon-beyond-pole", "POLYGON 10 20 11 20 11 91"),
            ("pos-polygon-nan", "POLYGON 10 20 11 nan 11 21"),
            ("pos-unknown-shape", "BOX 10 20 1 1")):
        yield Case(SERVICE, label, url, qs(("POS", value)), check=error_naming("POS"))
    intervals = {"BAND": ("2e-6 1e-6", "nan 1e-6", "1e-6 NaN", "a b", "1e-6"),
                 "TIME": ("60000 59000", "NaN 60000", "x"),
                 "EXPTIME": ("100 10", "nan 10"), "FOV": ("1 0.1", "0.1 nan"),
                 "SPATRES": ("1e-4 1e-5", "nan nan"), "TIMERES": ("10 1",),
                 "SPECRP": ("100 10",)}
    for name, values in intervals.items():
        for i, value in enumerate(values):
            yield Case(SERVICE, f"{name.lower()}-{i}-{value}", url, qs((name, value)),
                       check=error_naming(name))
    for value in ("x", "1.5", "99999999"):
        yield Case(SERVICE, f"calib-{value}", url, qs(("CALIB", value)),
                   check=error_naming("CALIB"))
    for name in ("COLLECTION", "ID", "TARGET", "FACILITY", "INSTRUMENT"):
        yield Case(SERVICE, f"{name.lower()}-nul", url, qs((name, "a\0b")),
                   check=error_naming(name))
    for value in ("x", "1.5", "1e3"):
        yield Case(SERVICE, f"maxrec-{value}", url,
                   qs(("POS", "CIRCLE 10 20 0.1"), ("MAXREC", value)),
                   check=error_naming("MAXREC"))
    yield Case(SERVICE, "responseformat-unknown", url,
               qs(("POS", "CIRCLE 10 20 0.1"), ("RESPONSEFORMAT", "application/x-nothing")),
               check=error_naming("RESPONSEFORMAT", "format"))


def _valid(schema: str, url: str) -> Iterator[Case]:
    tile = dal.sample_image(schema, "tile")
    ra, dec = tile.centre()
    pos = ("POS", f"CIRCLE {ra!r} {dec!r} 0.002")
    yield Case(SERVICE, "pos-circle", url, qs(pos), status=200,
               check=images_overlapping(schema, ra, dec, 0.002))
    yield Case(SERVICE, "pos-circle-calib3", url, qs(pos, ("CALIB", "3")), status=200,
               check=images_overlapping(schema, ra, dec, 0.002,
                                        lambda i: i.path.name.endswith("_tl.fit")))
    low, high = tile.mjd - 1e-4, tile.mjd + 1e-4
    yield Case(SERVICE, "pos-circle-time", url, qs(pos, ("TIME", f"{low!r} {high!r}")),
               status=200,
               check=images_overlapping(schema, ra, dec, 0.002,
                                        lambda i: i.mjd <= high and i.mjd_end >= low))
    yield Case(SERVICE, "pos-circle-open-band", url, qs(pos, ("BAND", "-Inf +Inf")),
               status=200, check=images_overlapping(schema, ra, dec, 0.002))
    yield Case(SERVICE, "pos-circle-id", url, qs(pos, ("ID", tile.did)), status=200,
               check=images_overlapping(schema, ra, dec, 0.002, lambda i: i.did == tile.did))
    yield Case(SERVICE, "pos-circle-unknown-collection", url,
               qs(pos, ("COLLECTION", "Ünknown ✓ 北")), status=200, check=_empty)
    yield Case(SERVICE, "pos-circle-target-unicode", url,
               qs(pos, ("TARGET", "NGC 6791 ✓ 北斗 Ω")), status=200, check=_empty)
    yield Case(SERVICE, "pos-circle-target-latin1", url, qs(pos, ("TARGET", "Œil de bœuf")),
               status=200, check=_empty)
    box = 0.002
    yield Case(SERVICE, "pos-range", url,
               qs(("POS", f"RANGE {ra - box!r} {ra + box!r} {dec - box!r} {dec + box!r}")),
               status=200, check=images_overlapping(schema, ra, dec, box))
    yield Case(SERVICE, "pos-polygon", url,
               qs(("POS", f"POLYGON {ra - box!r} {dec - box!r} {ra + box!r} {dec - box!r}"
                          f" {ra!r} {dec + box!r}")),
               status=200, check=images_overlapping(schema, ra, dec, box))
    # the pole is a valid position (nothing there in the demo)
    yield Case(SERVICE, "pos-circle-pole", url, qs(("POS", "CIRCLE 0 90 1")), status=200,
               check=lambda answer: _empty(answer))


def _empty(answer: requests.Response) -> None:
    assert dal.rows(answer) == []


def cases(endpoints: dict) -> Iterator[Case]:
    for schema, url in sorted(endpoints.get("sia", {}).items()):
        yield from _bad(url)
        yield from _valid(schema, url)
