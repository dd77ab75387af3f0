# SPDX-License-Identifier: BSD-3-Clause
"""DaCHS glue of the image archive (``resdir/common/images.rd``).

The RDs call these functions from their grammars, SODA descriptor generator,
data functions and DataLink meta makers; the knowledge of what a product is
lives in :mod:`casuvo.archive.imagemeta`, this module only translates it into DaCHS's
objects.  A published image is one extension of a CASU multi-extension file,
so its accref is ``<file path>/<extension>``.

SODA runs in DaCHS's datalink core with DaCHS's parameter parsing, geometry
(``coords.getPixelLimits``) and error documents, but with casuvo's own
descriptor, metaMaker and data function in place of the stock
``//soda#fits_standardDLFuncs``: the extension's layout, headers and WCS are
cached per file version, the cutout reads only the rows it covers and goes
out as a two-HDU FITS file (primary header + the image), never the whole MEF
(:mod:`casuvo.dachs.cutout` says why each step is faster).
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from casuvo.archive import imagemeta
from casuvo.config import Settings
from casuvo.dachs import cutout, releaselinks, spectra
from casuvo.surveys.registry import load_registry

__all__ = ["ancillary_rows", "check_cutout", "cut_image", "cutout_limits", "format_image",
           "image_descriptor", "image_links", "image_rows", "soda_parameters"]

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
    entry = load_registry(settings).by_collection(survey)
    runs = imagemeta.ledger_runs(settings.dsn, entry.key)
    releases = imagemeta.ledger_release_overrides(settings.dsn, entry.key)
    for row in imagemeta.image_records(settings.data_dir / "products", entry, runs, releases):
        row["footprint"] = _spoly(row["footprint"])
        yield row


def ancillary_rows(survey: str) -> Iterator[dict[str, Any]]:
    """Grammar rows for ``<survey>.ancillary``: confidence maps and catalogues."""
    settings = _settings()
    products = settings.data_dir / "products"
    entry = load_registry(settings).by_collection(survey)
    releases = imagemeta.ledger_release_overrides(settings.dsn, entry.key)
    for row in imagemeta.ancillary_records(products, entry, releases):
        row["footprint"] = _spoly(row["footprint"])
        yield row


def image_descriptor(pub_did: str, accref_prefix: str) -> Any:
    """The SODA/DataLink descriptor of one image (one extension of a product file).

    The products table says where the file is (one query per request); the
    file's layout and headers come from :func:`casuvo.dachs.cutout.image_file`,
    read once per file version rather than per request.
    """
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
    if not accref.rsplit("/", 1)[-1].isdigit():
        # a whole file (confidence map, catalogue, raw frame): a download, not an image
        return datalink.DatalinkFault.NotFoundFault(
            pub_did, f"{pub_did} is not an image (one extension of a product file) of "
            "this collection; its access URL is the file")
    try:
        row = products.RAccref(accref).productsRow
    except base.NotFoundError:
        return datalink.DatalinkFault.NotFoundFault(pub_did, f"No image {pub_did} here.")
    return _ImageDescriptor(pub_did, **row)


def _image_descriptor_class() -> type:
    from gavo.protocols import datalink

    class ImageDescriptor(datalink.FITSProductDescriptor):
        """A FITS descriptor for one image extension of a multi-extension file.

        ``hdr`` and ``primaryHeader`` are the cached, shared headers of
        :class:`casuvo.dachs.cutout.ImageFile`: read them, never change them.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("qnd", None)
            datalink.ProductDescriptor.__init__(self, *args, **kwargs)
            self.suppressAutoLinks = True
            self.extnum = int(self.accref.rsplit("/", 1)[1])
            self.imageExtind = self.extnum
            self.image = cutout.image_file(
                os.path.join(_inputs_dir(), self.accessPath), self.extnum)
            self.primaryHeader = self.image.primary_header
            self.hdr = self.image.header
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


def _sky(image: cutout.ImageFile) -> dict[str, Any]:
    """The image's sky WCS and SODA limits, computed once per file version.

    The same values DaCHS's stock metaMakers compute on every request
    (``soda.iterSpatialAxisKeys``, ``fits_makePOLYGONMeta``,
    ``fits_makeCIRCLEMeta``), with DaCHS's own functions.
    """
    extras = image.extras
    if "wcs" in extras:
        return extras
    from gavo.base import coords

    with image.lock:
        if "wcs" in extras:
            return extras
        wcs, axes = coords.getSkyWCS(image.header)
        if wcs is None:
            raise ValueError(f"{image.path}[{image.ext}] has no celestial WCS")
        footprint = wcs.calcFootprint(image.header)
        prm = wcs.wcs
        intervals = []
        for name, col, description, ucd, kind in (
                (prm.lattyp.strip(), prm.lat, "The latitude coordinate", "pos.eq.dec",
                 "WCSLAT"),
                (prm.lngtyp.strip(), prm.lng, "The longitude coordinate", "pos.eq.ra",
                 "WCSLONG")):
            lo, hi = float(min(footprint[:, col])), float(max(footprint[:, col]))
            if kind == "WCSLONG" and coords.straddlesStitchingLine(lo, hi):
                lo, hi = hi - 360, lo
            intervals.append((name, description, ucd, kind, lo, hi))
        extras["intervals"] = intervals
        extras["polygon"] = coords.getSpolyFromWCSFields(wcs).asSODA()
        extras["circle"] = coords.getCoveringCircle(wcs, axes).asSODA()
        extras["wcs"] = wcs
    return extras


def soda_parameters(descriptor: Any) -> Iterator[Any]:
    """SODA's input parameters of one image, as DaCHS's stock metaMakers declare them.

    RA and DEC intervals, POS, POLYGON, CIRCLE, PIXEL_1, PIXEL_2 and KIND with
    the same names, types, UCDs and limits as ``//soda#fits_standardDLFuncs``
    (minus SCALE, whose stock implementation cannot read an extension), from
    values cached per file version (:func:`_sky`).
    """
    from gavo import rscdef, svcs
    from gavo.base import makeStruct as MS  # noqa: N814 - DaCHS's name

    image = descriptor.image
    sky = _sky(image)
    descriptor.axisNames = {}
    for name, description, ucd, kind, lo, hi in sky["intervals"]:
        descriptor.axisNames[name] = kind
        yield MS(svcs.InputKey, name=name, unit="deg", description=description, ucd=ucd,
                 multiplicity="single", type="double precision[2]", xtype="interval",
                 values=MS(rscdef.Values, min=lo, max=hi))
    yield MS(svcs.InputKey, name="POS", type="text", ucd="phys.angArea;obs",
             description="Region to (approximately) cut out, as Circle,"
             " Region, or Polygon", multiplicity="forced-single")
    yield MS(svcs.InputKey, name="POLYGON", type="double precision(*)", xtype="polygon",
             ucd="phys.argArea;obs", unit="deg",
             description="A polygon (as a flattened array of ra, dec pairs)"
             " that should be covered by the cutout.", multiplicity="forced-single",
             values=MS(rscdef.Values, max=sky["polygon"]))
    yield MS(svcs.InputKey, name="CIRCLE", type="double precision(3)", xtype="circle",
             ucd="phys.argArea;obs", unit="deg",
             description="A circle (as a flattened array of ra, dec, radius)"
             " that should be covered by the cutout.", multiplicity="forced-single",
             values=MS(rscdef.Values, max=sky["circle"]))
    ny, nx = image.shape
    for axis, length, ucd in ((1, nx, "pos.cartesian.x;instr.pixel"),
                              (2, ny, "pos.cartesian.y;instr.pixel")):
        yield MS(svcs.InputKey, name=f"PIXEL_{axis}", type="integer[2]", unit="",
                 xtype="interval", description=f"Pixel coordinate along axis {axis}",
                 ucd=ucd, multiplicity="forced-single",
                 values=MS(rscdef.Values, min=1, max=length))
    yield MS(svcs.InputKey, name="KIND", type="text", multiplicity="forced-single",
             description="Set to HEADER to retrieve just the primary header, leave empty"
             " for data.",
             values=MS(rscdef.Values, options=[
                 MS(rscdef.Option, content_="HEADER", title="Retrieve header only"),
                 MS(rscdef.Option, content_="DATA",
                    title="Retrieve the full data, including header (default)")]))


def check_cutout(descriptor: Any, args: dict[str, Any]) -> None:
    """Reject cutout geometries that cannot mean anything (before any pixel is read).

    DaCHS parses the SODA parameters but accepts a circle of negative or zero
    radius (and cuts an arbitrary region for it); such a request is a usage
    error.
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


def _translate_pos(args: dict[str, Any]) -> None:
    """SODA POS as CIRCLE, POLYGON or RA/DEC (what ``//soda#fits_translateSODAPOS`` does)."""
    from gavo import base
    from gavo.protocols import siap
    from gavo.utils import DEG, pgsphere

    if not args.get("POS"):
        return
    geom = siap.parseSIAP2Geometry(args["POS"])
    args["POS"] = None
    if isinstance(geom, pgsphere.SCircle):
        if args.get("CIRCLE"):
            raise base.ValidationError("Cannot give POS and CIRCLE in one request.", "POS")
        args["CIRCLE"] = geom
    elif isinstance(geom, pgsphere.SPoly):
        if args.get("POLYGON"):
            raise base.ValidationError("Cannot give POS and POLYGON in one request.", "POS")
        args["POLYGON"] = geom
    elif isinstance(geom, pgsphere.SBox):
        if args.get("RA") or args.get("DEC"):
            raise base.ValidationError("Cannot give POS and RA/DEC in one request.", "POS")
        args["RA"] = (geom.corner1.x / DEG, geom.corner2.x / DEG)
        args["DEC"] = (geom.corner1.y / DEG, geom.corner2.y / DEG)
    else:
        raise base.ValidationError("Unexpected geometry result", "POS")


def cutout_limits(descriptor: Any, args: dict[str, Any]
                  ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """0-based [x0, x1), [y0, y1) of the requested cutout; None for the whole image.

    DaCHS's stock cutout semantics: POLYGON and CIRCLE (and POS) cover their
    pixel bounding box (``coords.getPixelLimits`` on the polygon's vertices),
    RA/DEC intervals the box of their corners, PIXEL_n pixel ranges; one axis
    cut twice is a usage error (``changingAxis``); no overlap is SODA's
    NoOverlap error.
    """
    from gavo.base import coords
    from gavo.protocols import soda

    _translate_pos(args)
    image = descriptor.image
    limits: dict[int, tuple[Any, Any]] = {}
    geometric = [(name, geom.asPoly() if name == "CIRCLE" else geom)
                 for name in ("POLYGON", "CIRCLE") if (geom := args.get(name))]
    ranges = [name for name in ("RA", "DEC") if args.get(name) is not None]
    if geometric or ranges:
        sky = _sky(image)
        wcs = sky["wcs"]
        with image.lock:
            found = []
            for name, poly in geometric:
                found += [(name, s) for s in coords.getPixelLimits(poly.asCooPairs(), wcs)]
            if ranges:
                box = {kind: [lo, hi] for _, _, _, kind, lo, hi in sky["intervals"]}
                for name in ranges:
                    kind = descriptor.axisNames[name]
                    box[kind][0] = max(box[kind][0], args[name][0])
                    box[kind][1] = min(box[kind][1], args[name][1])
                corners = [(box["WCSLONG"][0], box["WCSLAT"][0]),
                           (box["WCSLONG"][1], box["WCSLAT"][1])]
                found += [(ranges[-1], s) for s in coords.getPixelLimits(corners, wcs)]
        for name, (axis, lo, hi) in found:
            descriptor.changingAxis(axis, name)
            limits[axis] = (lo, hi)
        if any(lo == hi for lo, hi in limits.values()):   # DaCHS's "no overlap" sentinel
            raise soda.EmptyData()
    for axis in (1, 2):
        name = f"PIXEL_{axis}"
        if args.get(name) is not None:
            descriptor.changingAxis(axis, name)
            limits[axis] = tuple(args[name])
    if not limits:
        return None
    ny, nx = image.shape
    return (cutout.axis_slice(nx, *limits.get(1, (None, None))),
            cutout.axis_slice(ny, *limits.get(2, (None, None))))


def cut_image(descriptor: Any, args: dict[str, Any]) -> None:
    """The SODA data function: validate, locate and read the cutout.

    Leaves in ``descriptor.data`` what :func:`format_image` sends: the
    cutout's bytes (:func:`casuvo.dachs.cutout.cut`, only the rows it
    covers read), the header alone for KIND=HEADER, or the whole image.
    """
    check_cutout(descriptor, args)
    box = cutout_limits(descriptor, args)
    image = descriptor.image
    if args.get("KIND") == "HEADER":
        ny, nx = image.shape
        x, y = box or ((0, nx), (0, ny))
        descriptor.data = ("application/fits-header", cutout.header_only(image, x, y))
    elif box is None:
        descriptor.data = cutout.FITSResponse(cutout.whole_image(image), image.full_length)
    else:
        cut = cutout.cut(image, *box)
        descriptor.data = cutout.FITSResponse(cut.parts, cut.length)
    descriptor.dataIsPristine = False


def format_image(descriptor: Any) -> Any:
    """The SODA data formatter: what :func:`cut_image` prepared, as DaCHS's dlget sends it."""
    return descriptor.data


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
        contentLength=descriptor.image.full_length)
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
        releaselinks.tap_query_url(query),
        description=f"Processing record of {name}: run, inputs with checksums, parameters,"
                    " QC and timings (casuvo ledger, TAP query)",
        semantics="#auxiliary", localSemantics="provenance",
        contentType="application/x-votable+xml")
    yield from releaselinks.release_links(descriptor, rel)
    # the spectra of the spectroscopic archives whose positions lie on this image
    yield from spectra.image_spectra_links(descriptor, f"{schema}.images")

