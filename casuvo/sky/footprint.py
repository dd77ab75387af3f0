# SPDX-License-Identifier: BSD-3-Clause
"""Image footprints from FITS WCS: the one place a footprint polygon is computed.

Every published footprint — the ``s_region``/``coverage`` polygon of an image
(``vista.images``, ``vst.images``, ObsCore), the outline of a multi-detector
product (its ancillary files' ``s_region``) and the polygons a collection MOC is
the union of — comes from :func:`footprint`, so they all agree on which pixel
positions they trace and which way they wind.

* The vertices run round the image **counter-clockwise on the sky** (seen from
  inside the sphere, north up, east left), starting from the corner DaCHS
  starts from: the corners in the order of astropy's ``calc_footprint``,
  reversed when the pixel grid is not mirrored (``det(CD) < 0``), exactly as
  DaCHS's ``//siap#computePGS`` does, so the polygons DaCHS made before are the
  ones made now.
* ``edges=False`` traces the centres of the outer pixels (the four-corner
  polygon of SIA and ObsCore); ``edges=True`` the outer pixel *boundary*, so
  that the polygon encloses every pixel (what a MOC needs).
* ``samples`` points per side follow the SIP distortion, which a straight
  (great-circle) side between two corners cuts across.

This module needs astropy and numpy only (no database), so code on Dask
workers may use it; it runs with astropy 5.3 (service) and 7 (compute).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

__all__ = ["Outline", "celestial_images", "enclosing_outline", "footprint", "image_wcs",
           "pixel_boundary"]


def image_wcs(header: fits.Header) -> WCS:
    """The celestial WCS of an image header (TAN-SIP included), quietly.

    astropy's notes on ``-SIP`` headers and on keywords it fixes are not news
    for the pipeline's own products, and would fill every log.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def celestial_images(hdul: fits.HDUList
                     ) -> Iterator[tuple[int, fits.ImageHDU | fits.PrimaryHDU]]:
    """(index, HDU) of the 2-D images of a file that carry a celestial WCS.

    These are the detectors of a CASU multi-extension pawprint, or the one image
    of a tile; an empty primary HDU, tables and non-sky images are skipped.
    """
    for index, hdu in enumerate(hdul):
        h = hdu.header
        if h.get("NAXIS") == 2 and str(h.get("CTYPE1", "")).startswith("RA"):
            yield index, hdu


def pixel_boundary(nx: int, ny: int, *, mirrored: bool, samples: int = 1,
                   edges: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Zero-based pixel positions (x, y) round an ``nx`` × ``ny`` image.

    ``samples`` points per side, each side starting at its first corner. The
    corners are those of DaCHS's (and astropy's) ``calc_footprint``, reversed
    unless ``mirrored``: then a standard sky orientation (east left) gives a
    counter-clockwise walk on the sky, and so does a mirrored one.
    """
    lo, hi_x, hi_y = (-0.5, nx - 0.5, ny - 0.5) if edges else (0.0, nx - 1.0, ny - 1.0)
    corners = [(lo, lo), (lo, hi_y), (hi_x, hi_y), (hi_x, lo)]
    if not mirrored:
        corners.reverse()
    t = np.linspace(0.0, 1.0, samples, endpoint=False)
    xs, ys = [], []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
        xs.append(x0 + t * (x1 - x0))
        ys.append(y0 + t * (y1 - y0))
    return np.concatenate(xs), np.concatenate(ys)


def footprint(header: fits.Header, *, samples: int = 1, edges: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees (ICRS, ra in [0, 360)) of the outline of one image.

    The outline runs through ``samples`` points per side of the image, on the
    outer pixel centres or, with ``edges``, on the outer pixel boundary, mapped
    through the full WCS (SIP distortion included); see the module docstring
    for the vertex order.  ``samples=1``, ``edges=False`` is the four-corner
    polygon DaCHS's ``//siap#computePGS`` and astropy's ``calc_footprint`` give.
    """
    wcs = image_wcs(header)
    mirrored = bool(np.linalg.det(wcs.pixel_scale_matrix) > 0)
    xs, ys = pixel_boundary(int(header["NAXIS1"]), int(header["NAXIS2"]), mirrored=mirrored,
                            samples=samples, edges=edges)
    ra, dec = wcs.all_pix2world(xs, ys, 0)
    return np.mod(ra, 360.0), dec


@dataclass(frozen=True)
class Outline:
    """A circle about, and the convex outline of, several footprints."""

    ra: float
    dec: float
    """Centre (deg, ICRS)."""
    radius: float
    """Distance (deg) from the centre to the farthest vertex."""
    hull: np.ndarray
    """Vertices of the convex outline, N×2 (ra, dec) in degrees."""


def enclosing_outline(footprints: Iterable[tuple[Sequence[float], Sequence[float]]]
                      ) -> Outline:
    """The circle about, and convex outline of, several footprints (all detectors).

    The centre is the normalised mean of the vertices' unit vectors; the hull is
    taken in the tangent plane at that centre (an ObsCore ``s_region`` must be
    one polygon), its vertices in scipy's order (counter-clockwise in that
    plane's (east, north) offsets); the radius reaches the farthest vertex.
    """
    from astropy.coordinates import SkyCoord
    from scipy.spatial import ConvexHull

    corners = np.concatenate([np.column_stack([ra, dec]) for ra, dec in footprints])
    sky = SkyCoord(corners[:, 0], corners[:, 1], unit="deg")
    mean = sky.cartesian.xyz.value.mean(axis=1)
    centre = SkyCoord(*mean, representation_type="cartesian")
    centre = SkyCoord(centre.spherical.lon, centre.spherical.lat)
    offsets = sky.transform_to(centre.skyoffset_frame())
    plane = np.column_stack([offsets.lon.deg, offsets.lat.deg])
    hull = corners[ConvexHull(plane).vertices]
    return Outline(float(centre.ra.deg), float(centre.dec.deg),
                   float(centre.separation(sky).deg.max()), hull)
