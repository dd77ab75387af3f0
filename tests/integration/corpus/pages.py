# SPDX-License-Identifier: BSD-3-Clause
"""Archive page cases, for every ``pages`` endpoint: each collection's
overview (a volatile page), image page (qp) and image search form.

The overview and the image page take no query parameters: any they are
given (unknown, DaCHS's own output switches, malformed) is refused with 400
and a page naming it.  The image page refuses a NUL in its path (400) and
answers an unknown or traversing path with 404.  Valid pages: the overview's
counts (images, product files, tiles, pawprint detectors, nights) equal
those of the product files, and an image's page names its file and the
detector (EXTNAME) its FITS header gives.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from urllib.parse import quote

import requests
from astropy.io import fits

from tests.integration.corpus import Case, qs
from tests.integration.corpus import _dal as dal

SERVICE = "pages"


def error_page(*words: str) -> Callable[[requests.Response], None]:
    """An HTML error page whose message holds each of ``words``."""

    def check(answer: requests.Response) -> None:
        assert answer.headers["content-type"].startswith("text/html"), answer.headers
        text = answer.content.decode("utf-8")
        found = re.search(r'class="errmsg"[^>]*>(.*?)</div>', text, re.S)
        assert found, answer.text[:300]
        message = html.unescape(found.group(1)).lower()
        assert all(w.lower() in message for w in words), (words, message)

    return check


def overview_counts(schema: str) -> Callable[[requests.Response], None]:
    """The overview's stated counts are those of the collection's product files."""

    def check(answer: requests.Response) -> None:
        stats = dict(re.findall(r'data-stat="(\w+)"><span class="value">(\d+)<', answer.text))
        images = dal.images(schema)
        tiles = [i for i in images if i.path.name.endswith("_tl.fit")]
        expected = {"images": len(images), "files": len({i.path for i in images}),
                    "tile": len(tiles), "pawprint": len(images) - len(tiles),
                    "nights": len({i.path.parent.name for i in images})}
        assert {k: int(stats[k]) for k in expected} == expected

    return check


def image_page(image: dal.Image) -> Callable[[requests.Response], None]:
    """The image's page names its file, its detector and its DataLink document."""

    def check(answer: requests.Response) -> None:
        text = html.unescape(answer.text)
        assert image.path.name in text
        extname = fits.getheader(image.path, image.ext).get("EXTNAME")
        if extname:
            assert str(extname) in text
        assert "dlmeta" in text

    return check


def _overview(schema: str, url: str) -> Iterator[Case]:
    yield Case(SERVICE, "overview", url, status=200, check=overview_counts(schema))
    for label, pars in (("unknown-parameter", [("foo", "bar")]),
                        ("format-votable", [("_FORMAT", "VOTable")]),
                        ("format-unknown", [("_FORMAT", "nonsense")]),
                        ("maxrec-text", [("MAXREC", "many")]),
                        ("responseformat", [("RESPONSEFORMAT", "text/x-nothing")]),
                        ("nul", [("x", "\0")]), ("unicode-name", [("北✓", "1")])):
        yield Case(SERVICE, label, url, qs(*pars), check=error_page(pars[0][0]))
    yield Case(SERVICE, "child-path", url + "/extra", status=404)


def _image(schema: str, url: str) -> Iterator[Case]:
    for imagetype in ("tile", "pawprint"):
        image = dal.sample_image(schema, imagetype)
        yield Case(SERVICE, f"{imagetype}-page", f"{url}/{image.accref}", status=200,
                   check=image_page(image))
    image = dal.sample_image(schema, "tile")
    page = f"{url}/{image.accref}"
    for label, pars in (("unknown-parameter", [("foo", "bar")]),
                        ("format-votable", [("_FORMAT", "VOTable")]),
                        ("verb-text", [("_VERB", "loud")]),
                        ("maxrec-negative", [("MAXREC", "-1")]),
                        ("nul", [("accref", "\0")])):
        yield Case(SERVICE, label, page, qs(*pars), check=error_page(pars[0][0]))
    yield Case(SERVICE, "root", url, status=404, check=error_page("path"))
    yield Case(SERVICE, "unknown-accref", f"{url}/products/{schema}/nothing.fit/1", status=404,
               check=error_page("no record"))
    yield Case(SERVICE, "extension-beyond", f"{url}/{image.accref.rsplit('/', 1)[0]}/99",
               status=404, check=error_page("no record"))
    yield Case(SERVICE, "dotdot", f"{url}/products/{schema}/../../../etc/passwd", status=404)
    # no resource has a NUL byte in its name: 404, as for any path that cannot exist
    yield Case(SERVICE, "nul-in-path", f"{url}/{quote(image.accref)}%00", status=404,
               check=error_page("NUL"))
    yield Case(SERVICE, "unicode-path", f"{url}/products/{schema}/{quote('ünïcødé ✓ 北')}.fit/1",
               status=404, check=error_page("no record"))


def cases(endpoints: dict) -> Iterator[Case]:
    for key, url in sorted(endpoints.get("pages", {}).items()):
        schema, _, kind = key.partition(".")
        if kind == "overview":
            yield from _overview(schema, url)
        elif kind == "image":
            yield from _image(schema, url)
        elif kind == "search":
            yield Case(SERVICE, "search-page", url, status=200,
                       check=lambda answer: _has_fields(answer, "hPOS", "hSIZE"))


def _has_fields(answer: requests.Response, *fields: str) -> None:
    assert all(f'name="{f}"' in answer.text for f in fields)
