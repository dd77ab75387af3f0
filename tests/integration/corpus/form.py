# SPDX-License-Identifier: BSD-3-Clause
"""Web form cases, for every ``form`` endpoint: cone search forms (tables
with an ``scs`` service) and image search forms (collections with ``sia1``).

Usage errors (a position beyond the pole or not a position, a radius or
size that is negative, NaN, not a number or too wide, a radius missing, an
unknown output format or sort direction, a NUL byte) come back as the form
again, with the message at the field, and HTTP 400.  Valid searches come
back with 200: the cone form's rows (as VOTable, and the HTML page's
"Matched" count) are the table's sources within the radius by SQL and
numpy; the image form's images are those whose pixels (the files' WCS)
overlap the box.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import requests

from tests.integration.corpus import Case, qs
from tests.integration.corpus import _dal as dal
from tests.integration.corpus.scs import cone_matches

SERVICE = "form"
SUBMIT = ("__nevow_form__", "genForm")


def form_error(field: str, *, with_form: bool = True) -> Callable[[requests.Response], None]:
    """An HTML page whose error message names ``field`` (the form itself again)."""

    def check(answer: requests.Response) -> None:
        text = answer.text
        assert answer.headers["content-type"].startswith("text/html"), answer.headers
        if with_form:
            assert 'id="genForm"' in text, text[:300]
        messages = re.findall(r'class="(?:message|errmsg|errors)"[^>]*>(.*?)</div>', text,
                              re.S)
        plain = html.unescape(re.sub(r"<[^>]+>", " ", " ".join(messages))).lower()
        assert field.lower() in plain, (field, plain[:300])

    return check


def matched(count: Callable[[], tuple[int, int]]) -> Callable[[requests.Response], None]:
    """An HTML result page saying "Matched: N" for N in the expected (least, most)."""

    def check(answer: requests.Response) -> None:
        found = re.search(r"Matched:\s*(?:<[^>]*>\s*)*(\d+)", answer.text)
        assert found, answer.text[:300]
        least, most = count()
        assert least <= int(found.group(1)) <= most, (found.group(1), least, most)

    return check


def _cone(table: str, url: str) -> Iterator[Case]:
    good = {"hscs_pos": "10,-20", "hscs_sr": "1"}
    for field, value, label in (
            ("hscs_pos", "10,95", "pos-beyond-pole"), ("hscs_pos", "10,-90.5", "pos-below-pole"),
            ("hscs_pos", "400,20", "pos-ra-above-360"), ("hscs_pos", "10,,20", "pos-malformed"),
            ("hscs_pos", "1,2,3", "pos-three-numbers"), ("hscs_pos", "10\0,20", "pos-nul"),
            ("hscs_sr", "-1", "sr-negative"), ("hscs_sr", "0", "sr-zero"),
            ("hscs_sr", "nan", "sr-nan"), ("hscs_sr", "inf", "sr-inf"),
            ("hscs_sr", "wide", "sr-text"), ("hscs_sr", "1000", "sr-too-wide")):
        pars = {**good, field: value}
        # the form's own number check names the field by its label; a NUL byte
        # is refused before the form is rendered (a page with the message)
        named = "search radius" if label in ("sr-text", "sr-nan", "sr-inf") else field
        yield Case(SERVICE, label, url, qs(SUBMIT, *pars.items()),
                   check=form_error(named, with_form=label != "pos-nul"))
    yield Case(SERVICE, "sr-missing", url, qs(SUBMIT, ("hscs_pos", "10,-20")),
               check=form_error("radius"))
    yield Case(SERVICE, "format-unknown", url, qs(SUBMIT, *good.items(), ("_FORMAT", "nonsense")),
               check=form_error("format"))
    yield Case(SERVICE, "sort-direction-unknown", url,
               qs(SUBMIT, *good.items(), ("_DBOPTIONS_DIR", "sideways")),
               check=form_error("_DBOPTIONS_DIR", with_form=False))
    ra, dec = dal.sample_source(table)
    pos = ("hscs_pos", f"{ra!r},{dec!r}")
    for sr in (0.3, 0.05):
        yield Case(SERVICE, f"cone-{sr}-votable", url,
                   qs(SUBMIT, pos, ("hscs_sr", str(sr)), ("_FORMAT", "VOTable")), status=200,
                   check=cone_matches(table, ra, dec, sr / 60))
    yield Case(SERVICE, "cone-html", url, qs(SUBMIT, pos, ("hscs_sr", "0.3")), status=200,
               check=matched(lambda: _cone_count(table, ra, dec, 0.3 / 60)))
    yield Case(SERVICE, "empty-form", url, "", status=200,
               check=lambda answer: _has_form(answer, "hscs_pos"))


def _cone_count(table: str, ra: float, dec: float, radius: float) -> tuple[int, int]:
    inside, edge = dal.cone_ids(table, ra, dec, radius)
    return len(inside - edge), len(inside | edge)


def _has_form(answer: requests.Response, field: str) -> None:
    assert 'id="genForm"' in answer.text and f'name="{field}"' in answer.text


def _images(schema: str, url: str) -> Iterator[Case]:
    good = {"hPOS": "10,-20", "hSIZE": "0.1"}
    for field, value, label in (
            ("hPOS", "10,95", "pos-beyond-pole"), ("hPOS", "400,20", "pos-ra-above-360"),
            ("hPOS", "10,,20", "pos-malformed"), ("hPOS", "\0", "pos-nul"),
            ("hSIZE", "-1", "size-negative"), ("hSIZE", "0", "size-zero"),
            ("hSIZE", "nan", "size-nan"), ("hSIZE", "20", "size-too-wide"),
            ("hSIZE", "big", "size-text"), ("hINTERSECT", "FOO", "intersect-unknown"),
            ("imagetype", "nebula", "imagetype-unknown"),
            ("qcstatus", "maybe", "qcstatus-unknown")):
        pars = {**good, field: value}
        named = "size" if label == "size-text" else field
        yield Case(SERVICE, label, url, qs(SUBMIT, *pars.items()),
                   check=form_error(named, with_form=label != "pos-nul"))
    yield Case(SERVICE, "sort-direction-unknown", url,
               qs(SUBMIT, *good.items(), ("_DBOPTIONS_DIR", "sideways")),
               check=form_error("_DBOPTIONS_DIR", with_form=False))
    tile = dal.sample_image(schema, "tile")
    ra, dec = tile.centre()
    pos = ("hPOS", f"{ra!r},{dec!r}")

    def count() -> tuple[int, int]:
        expected = dal.expected_images(schema, ra, dec, 0.002)
        return len(expected["in"]), len(expected["in"]) + len(expected["edge"])

    yield Case(SERVICE, "images-html", url, qs(SUBMIT, pos, ("hSIZE", "0.004")), status=200,
               check=matched(count))
    yield Case(SERVICE, "images-filter-unicode", url,
               qs(SUBMIT, pos, ("hSIZE", "0.004"), ("filtername", "Ks ✓ 北")), status=200,
               check=lambda answer: _has_form(answer, "hPOS"))
    yield Case(SERVICE, "empty-form", url, "", status=200,
               check=lambda answer: _has_form(answer, "hPOS"))


def cases(endpoints: dict) -> Iterator[Case]:
    cone_tables = set(endpoints.get("scs", {}))
    image_schemas = set(endpoints.get("sia1", {}))
    for key, url in sorted(endpoints.get("form", {}).items()):
        schema = key.split(".")[0]
        if key in cone_tables:
            yield from _cone(key, url)
        elif key.endswith(".images") and schema in image_schemas:
            yield from _images(schema, url)
