# SPDX-License-Identifier: BSD-3-Clause
"""DataLink (``dlmeta``) cases, for every ``datalink`` service of the endpoints.

Bad requests (no ID, an empty ID, a NUL byte, an unknown RESPONSEFORMAT or
MAXREC literal, parameters dlmeta does not take) get HTTP 400 and DALI's
error VOTable naming the parameter.  IDs that are well-formed but name
nothing (unknown, malformed, foreign, with ``..``) get what DataLink 1.1
prescribes: a 200 link table whose row for that ID carries a NotFoundFault,
while the other IDs of the same request keep their links.  Valid input: the
links of an image, with the ``#this`` link's length equal to the bytes of
the primary header, the extension's header and its data in the product
file (astropy's file layout).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import requests
from astropy.io import fits

from tests.integration.corpus import Case, qs
from tests.integration.corpus import _dal as dal
from tests.integration.corpus.scs import error_naming

SERVICE = "datalink"


def faults_for(bad: str, good: str | None = None) -> Callable[[requests.Response], None]:
    """A NotFoundFault row for ``bad``; the usual links for ``good`` if given."""

    # the ID column is ASCII (char), as IVOA identifiers are: DaCHS writes
    # any other character of an ID it cannot find as "?"
    echoed = bad.encode("ascii", "replace").decode()

    def check(answer: requests.Response) -> None:
        rows = dal.rows(answer)
        faults = [r for r in rows if r["ID"] == echoed]
        assert faults and all((r["error_message"] or "").startswith("NotFoundFault")
                              for r in faults), rows[:3]
        if good is not None:
            semantics = {r["semantics"] for r in rows if r["ID"] == good}
            assert {"#this", "#cutout", "#preview"} <= semantics, semantics

    return check


def links_of(image: dal.Image) -> Callable[[requests.Response], None]:
    """Links of ``image``: no errors, #this/#cutout/#preview, the right length."""

    def check(answer: requests.Response) -> None:
        rows = dal.rows(answer)
        assert {r["ID"] for r in rows} == {image.did}
        assert not any(r["error_message"] for r in rows), rows[:2]
        assert {"#this", "#cutout", "#preview"} <= {r["semantics"] for r in rows}
        this = next(r for r in rows if r["semantics"] == "#this")
        with fits.open(image.path, lazy_load_hdus=True) as hdul:
            primary, hdu = hdul[0].fileinfo(), hdul[image.ext].fileinfo()
        expected = (primary["datLoc"] - primary["hdrLoc"]
                    + hdu["datLoc"] - hdu["hdrLoc"] + hdu["datSpan"])
        assert this["content_length"] == expected

    return check


def cases(endpoints: dict) -> Iterator[Case]:
    for schema, url in sorted(endpoints.get("datalink", {}).items()):
        if schema not in dal.image_schemas():
            continue  # a spectroscopic archive: corpus/ssa.py
        image = dal.sample_image(schema, "tile")
        did = image.did
        prefix, _, accref = did.partition("?")
        yield Case(SERVICE, "id-missing", url, "", check=error_naming("ID"))
        yield Case(SERVICE, "id-empty", url, qs(("ID", "")), check=error_naming("ID"))
        yield Case(SERVICE, "id-blank", url, qs(("ID", "  ")), check=error_naming("ID"))
        yield Case(SERVICE, "id-nul", url, qs(("ID", did + "\0")), check=error_naming("ID"))
        yield Case(SERVICE, "responseformat-unknown", url,
                   qs(("ID", did), ("RESPONSEFORMAT", "application/x-nothing")),
                   check=error_naming("RESPONSEFORMAT"))
        yield Case(SERVICE, "maxrec-text", url, qs(("ID", did), ("MAXREC", "many")),
                   check=error_naming("MAXREC"))
        yield Case(SERVICE, "parameter-unknown", url, qs(("ID", did), ("CIRCLE", "1 2 3")),
                   check=error_naming("circle"))
        for label, bad in (("unknown", did.rsplit("/", 1)[0] + "/99"),
                           ("malformed", "not an identifier"),
                           ("foreign", "ivo://elsewhere.example/data?x/1"),
                           ("dotdot", f"{prefix}?products/{schema}/../../../etc/passwd/1"),
                           ("file-path", "/etc/passwd"),
                           ("unicode", f"{prefix}?products/{schema}/ünïcødé ✓ 北.fit/1")):
            yield Case(SERVICE, f"id-{label}", url, qs(("ID", bad)), status=200,
                       check=faults_for(bad))
        yield Case(SERVICE, "ids-one-unknown", url,
                   qs(("ID", did), ("ID", did.rsplit("/", 1)[0] + "/99")), status=200,
                   check=faults_for(did.rsplit("/", 1)[0] + "/99", did))
        yield Case(SERVICE, "links", url, qs(("ID", did)), status=200, check=links_of(image))
        yield Case(SERVICE, "links-responseformat", url,
                   qs(("ID", did),
                      ("RESPONSEFORMAT", "application/x-votable+xml;content=datalink")),
                   status=200, check=links_of(image))
        pawprint = dal.sample_image(schema, "pawprint")
        yield Case(SERVICE, "links-pawprint", url, qs(("ID", pawprint.did)), status=200,
                   check=links_of(pawprint))
