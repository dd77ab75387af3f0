# SPDX-License-Identifier: BSD-3-Clause
"""DaCHS glue of the image archive (``resdir/common/images.rd``).

The RDs call these functions from their grammars, SODA descriptor generator,
data functions and DataLink meta makers; the knowledge of what a product is
lives in :mod:`casuvo.archive.imagemeta`, this module only translates it into DaCHS's
objects.  A published image is one extension of a CASU multi-extension file,
so its accref is ``<file path>/<extension>`` and its SODA descriptor carries
the extension's header: DaCHS's standard FITS cutout machinery then works on
that extension, and :func:`keep_image_extension` returns it as a
two-HDU FITS file (primary header + the image), never the whole MEF.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from astropy.io import fits

from casuvo.archive import imagemeta
from casuvo.config import Settings
from casuvo.surveys.registry import load_registry

__all__ = ["ancillary_rows", "check_cutout", "image_descriptor", "image_links", "image_rows",
           "keep_image_extension"]

def _settings() -> Settings:
    return Settings.from_env()


def _inputs_dir() -> Path:
    from gavo import base

    return Path(base.getConfig("inputsDir"))


def _spoly(vertices: Any) -> Any:
    """DaCHS's pgSphere polygon (what its rowmakers write) of N×2 (ra, dec) degrees."""
    from gavo.utils import pgsphere

    return pgsphere.SPoly([pgsphere.SPoint.fromDegrees(float(ra), float(dec))
                           for ra, dec in vertices])


def image_rows(survey: str) -> Iterator[dict[str, Any]]:
    """Grammar rows for ``<survey>.images``: one per image extension.

    ``footprint`` (casuvo's polygon, :mod:`casuvo.sky.footprint`) becomes the
    spoly the RD maps to ``coverage`` (and so to ObsCore ``s_region``).
    """
    settings = _settings()
    runs = imagemeta.ledger_runs(settings.dsn, survey)
    for row in imagemeta.image_records(settings.data_dir / "products",
                                       load_registry(settings).by_collection(survey), runs):
        row["footprint"] = _spoly(row["footprint"])
        yield row


def ancillary_rows(survey: str) -> Iterator[dict[str, Any]]:
    """Grammar rows for ``<survey>.ancillary``: confidence maps and catalogues."""
    settings = _settings()
    products = settings.data_dir / "products"
    entry = load_registry(settings).by_collection(survey)
    for row in imagemeta.ancillary_records(products, entry):
        row["footprint"] = _spoly(row["footprint"])
        yield row


def image_descriptor(pub_did: str, accref_prefix: str) -> Any:
    """The SODA/DataLink descriptor of one image (one extension of a product file)."""
    from gavo import base
    from gavo.protocols import datalink, products
    from gavo.rscdef import getAccrefFromStandardPubDID

    try:
        accref = getAccrefFromStandardPubDID(pub_did)
    except ValueError:
        return datalink.DatalinkFault.NotFoundFault(pub_did, "Not a dataset of this site.")
    if not accref.startswith(accref_prefix):
        return datalink.DatalinkFault.NotFoundFault(
            pub_did, f"{pub_did} is not an image of this collection")
    try:
        row = products.RAccref(accref).productsRow
    except base.NotFoundError:
        return datalink.DatalinkFault.NotFoundFault(pub_did, f"No image {pub_did} here.")
    return _ImageDescriptor(pub_did, **row)


def _image_descriptor_class() -> type:
    from gavo.protocols import datalink

    class ImageDescriptor(datalink.FITSProductDescriptor):
        """A FITS descriptor for one image extension of a multi-extension file."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("qnd", None)
            datalink.ProductDescriptor.__init__(self, *args, **kwargs)
            self.suppressAutoLinks = True
            self.extnum = int(self.accref.rsplit("/", 1)[1])
            self.imageExtind = self.extnum
            path = os.path.join(_inputs_dir(), self.accessPath)
            with fits.open(path) as hdul:
                self.primaryHeader = hdul[0].header.copy()
                self.hdr = hdul[self.extnum].header.copy()
            self.slices = []
            self.dataIsPristine = True
            self._axesTouched = set()

    return ImageDescriptor


class _Lazy:
    """Builds the descriptor class on first use (``gavo`` only imported inside DaCHS)."""

    cls: type | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.cls is None:
            self.cls = _image_descriptor_class()
        return self.cls(*args, **kwargs)


_ImageDescriptor = _Lazy()


def check_cutout(descriptor: Any, args: dict[str, Any]) -> None:
    """Reject cutout geometries that cannot mean anything (before any file is opened).

    DaCHS parses the SODA parameters but accepts a circle of negative or zero
    radius (and cuts an arbitrary region for it); such a request is a usage
    error.  As the first data function this must leave ``descriptor.data``
    set; DaCHS's ``fits_makeHDUList``, which runs next, replaces the
    placeholder with the opened file.
    """
    from gavo import base
    from gavo.protocols import siap

    def radius_deg(value: Any) -> float | None:
        if hasattr(value, "radius"):
            return math.degrees(value.radius)
        if isinstance(value, list | tuple) and len(value) == 3:
            return float(value[2])
        return None

    pos = args.get("POS")
    if pos:
        geom = siap.parseSIAP2Geometry(pos)
        radius = radius_deg(geom) if hasattr(geom, "radius") else None
        if radius is not None and not 0 < radius <= 10:
            raise base.ValidationError(
                f"POS CIRCLE radius must be in (0, 10] degrees, not {radius:g}", "POS")
    circle = args.get("CIRCLE")
    if circle is not None:
        radius = radius_deg(circle)
        if radius is not None and not 0 < radius <= 10:
            raise base.ValidationError(
                f"CIRCLE radius must be in (0, 10] degrees, not {radius:g}", "CIRCLE")
    for axis in ("PIXEL_1", "PIXEL_2"):
        limits = args.get(axis)
        if limits is not None and len(limits) == 2 and limits[0] > limits[1]:
            raise base.ValidationError(
                f"{axis} lower limit {limits[0]} is above the upper limit {limits[1]}", axis)
    descriptor.data = "not opened yet"


def keep_image_extension(descriptor: Any) -> None:
    """Reduce the opened MEF to the primary header and the requested image.

    Runs after DaCHS's cutout functions; an empty cut (no overlap) has already
    been answered by SODA's error.  The primary header is kept (observation
    keywords, PROVn) without data, as ESO Phase 3 single images have it.
    """
    from gavo import base

    hdul = descriptor.data
    image = hdul[descriptor.imageExtind]
    if image.data is None or 0 in image.data.shape:
        raise base.ValidationError(
            "The cutout does not overlap this image (NoOverlap).", "POS")
    primary = fits.PrimaryHDU(header=descriptor.primaryHeader.copy())
    primary.header["EXTEND"] = True
    descriptor.data = fits.HDUList([primary, fits.ImageHDU(image.data, image.header)])
    descriptor.imageExtind = 1
    descriptor.dataIsPristine = False


def image_links(descriptor: Any) -> Iterator[Any]:
    """DataLink rows of an image besides the cutout service (added by DaCHS)."""
    from gavo import base
    from gavo.protocols import products

    service_url = base.getConfig("web", "serverURL").rstrip("/")
    rel = descriptor.accessPath
    folder, name = rel.rsplit("/", 1)
    stem = name[: -len(".fit")]
    did = urllib.parse.quote(descriptor.pubDID)
    schema = folder.split("/")[1]
    yield descriptor.makeLink(
        f"{service_url}/{schema}/q/dl/dlget?ID={did}",
        description=f"This image: extension {descriptor.extnum} of {name} as a FITS file",
        semantics="#this", contentType="image/fits",
        contentLength=descriptor.hdr.get("NAXIS1", 0) * descriptor.hdr.get("NAXIS2", 0) * 4
        + 8640)
    yield descriptor.makeLink(
        products.makeProductLink(descriptor.accref) + "?preview=True",
        description="PNG preview of this image", semantics="#preview",
        contentType="image/png")
    yield descriptor.makeLink(
        products.makeProductLink(descriptor.accref),
        description=f"The product file {name} (multi-extension FITS, all detectors)",
        semantics="#auxiliary", localSemantics="product-file", contentType="image/fits",
        contentLength=descriptor.estimateSize())
    for suffix, what, local, mime in (
            ("_conf.fit", "Confidence map", "confidence-map", "image/fits"),
            ("_cat.fits", "Source catalogue", "source-catalogue", "application/fits")):
        yield descriptor.makeLink(
            products.makeProductLink(f"{folder}/{stem}{suffix}"),
            description=f"{what} of {name} ({stem}{suffix})", semantics="#auxiliary",
            localSemantics=local, contentType=mime)
    for key in sorted(k for k in descriptor.primaryHeader if k.startswith("PROV")):
        source = str(descriptor.primaryHeader[key])
        if source.endswith("_st.fit"):  # a tile's input pawprints are archive products
            yield descriptor.makeLink(
                products.makeProductLink(f"{folder}/{source}/1"),
                description=f"Input stacked pawprint {source}", semantics="#progenitor",
                contentType="image/fits")
    query = (f"SELECT * FROM {schema}.processing WHERE product = '{name}'"
             " ORDER BY finished DESC")
    yield descriptor.makeLink(
        f"{service_url}/tap/sync?" + urllib.parse.urlencode(
            {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}),
        description=f"Processing record of {name}: run, inputs with checksums, parameters,"
                    " QC and timings (casuvo ledger, TAP query)",
        semantics="#auxiliary", localSemantics="provenance",
        contentType="application/x-votable+xml")
