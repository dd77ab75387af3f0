# SPDX-License-Identifier: BSD-3-Clause
"""Image cutouts as bytes: cached layouts, row reads, card-level headers, FITS checksums.

The pixel side of every casuvo cutout, shared by the synchronous SODA
service (:mod:`casuvo.dachs.cutout`, which adds the HTTP response) and the
bulk cutout jobs on Dask workers (:mod:`casuvo.archive.bulkcutouts`): both
cut the same bytes out of the same files, so a cutout made in a job equals
the one SODA sends, byte for byte.  It imports only numpy and astropy.

1. **Layout cache** (:func:`image_file`): an image's headers, their raw
   bytes, its data offset, shape and type are read once per file version
   (path, size, mtime, inode) and kept in a small LRU.
2. **Row reads** (:func:`read_pixels`): each row's run of the cutout's
   columns is read from the file straight into the output buffer.
3. **Card-level headers** (:func:`cutout_header`): the image header's 80-byte
   cards are copied; only NAXISn, CRPIXn, CHECKSUM and DATASUM are rewritten.
4. **Cheap checksums** (:func:`checksum`): DATASUM and CHECKSUM of a cutout
   are recomputed with numpy.
5. **SODA's geometry** (:func:`circle_limits`): the pixel box DaCHS 2.7 cuts
   for a SODA ``CIRCLE`` (``SCircle.asPoly`` then ``coords.getPixelLimits``),
   recomputed without DaCHS for the workers.
"""

from __future__ import annotations

import collections
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits

from casuvo.imaging.casu import encode_checksum

__all__ = ["CutoutBytes", "ImageFile", "axis_slice", "checksum", "circle_limits",
           "circle_polygon", "cut", "cutout_header", "encode_checksum", "fits_bytes",
           "header_only", "image_file", "read_pixels", "sky_wcs", "whole_image"]

BLOCK = 2880
CARD = 80
_END = b"END".ljust(CARD)
#: Image layouts kept in memory (a few kB each plus a WCS).
CACHE_SIZE = 256


@dataclass
class ImageFile:
    """Where one image extension lies in its file, with its parsed headers.

    Shared between requests: the headers and the WCS are read-only (copy before
    changing them); :attr:`lock` guards the WCS, whose wcslib state is not
    safe for concurrent transformations.
    """

    path: str
    ext: int
    primary_header: fits.Header
    header: fits.Header
    primary_bytes: bytes
    cards: tuple[bytes, ...]
    data_offset: int
    data_span: int
    shape: tuple[int, int]
    dtype: np.dtype
    lock: threading.Lock = field(default_factory=threading.Lock)
    extras: dict[str, Any] = field(default_factory=dict)
    """Values derived once per file version by the caller (WCS, SODA limits)."""

    @property
    def header_bytes(self) -> bytes:
        """The extension's header as it is in the file (cards, END, padding)."""
        return _pad(b"".join(self.cards) + _END, b" ")

    @property
    def full_length(self) -> int:
        """Bytes of :func:`whole_image`'s response."""
        return len(self.primary_bytes) + len(self.header_bytes) + self.data_span


_cache: collections.OrderedDict[tuple[str, int], tuple[tuple[int, ...], ImageFile]] = (
    collections.OrderedDict())
_cache_lock = threading.Lock()


def image_file(path: str, ext: int) -> ImageFile:
    """The layout of extension ``ext`` of ``path``, read once per file version.

    A product rewritten in place (republished) has a new size, mtime or inode
    and is read again.
    """
    st = os.stat(path)
    version = (st.st_size, st.st_mtime_ns, st.st_ino)
    key = (path, ext)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == version:
            _cache.move_to_end(key)
            return hit[1]
    image = _read_layout(path, ext)
    with _cache_lock:
        _cache[key] = (version, image)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return image


def _read_layout(path: str, ext: int) -> ImageFile:
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        primary, hdu = hdul[0], hdul[ext]
        p_info, info = primary.fileinfo(), hdu.fileinfo()
        primary_header, header = primary.header.copy(), hdu.header.copy()
    if header.get("NAXIS") != 2:
        raise ValueError(f"{path}[{ext}] is not a 2-d image")
    with open(path, "rb") as f:
        f.seek(p_info["hdrLoc"])
        primary_bytes = f.read(p_info["datLoc"] - p_info["hdrLoc"])
        f.seek(info["hdrLoc"])
        raw = f.read(info["datLoc"] - info["hdrLoc"])
    cards = []
    for i in range(0, len(raw), CARD):
        card = raw[i:i + CARD]
        if card == _END:
            break
        cards.append(card)
    bitpix = int(header["BITPIX"])
    dtype = np.dtype({8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4",
                      -64: ">f8"}[bitpix])
    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    return ImageFile(path=path, ext=ext, primary_header=primary_header, header=header,
                     primary_bytes=primary_bytes, cards=tuple(cards),
                     data_offset=int(info["datLoc"]), data_span=int(info["datSpan"]),
                     shape=shape, dtype=dtype)


def axis_slice(length: int, first: float | None, last: float | None) -> tuple[int, int]:
    """0-based [start, stop) of 1-based inclusive pixel limits, as DaCHS cuts them.

    The same clamping as DaCHS's ``fitstools.cutoutHeader``: limits are clipped
    to the axis, and an axis never vanishes (at least one pixel stays).
    """
    lo = 1 if first is None else int(first)
    hi = length if last is None else int(last)
    lo = min(max(1, lo), length)
    hi = min(length, max(1, hi))
    start = lo - 1
    if hi - start <= 0:
        hi = start + 1
    return start, hi


def _card(key: str, value: Any, comment: str = "") -> bytes:
    return fits.Card(key, value, comment).image.encode("ascii")


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % BLOCK)


def cutout_header(image: ImageFile, x: tuple[int, int], y: tuple[int, int]) -> bytes:
    """The image's header cards (no END) for pixels [y0:y1, x0:x1].

    NAXISn and CRPIXn are rewritten (SIP and every other WCS card is relative
    to CRPIX and stays valid); CHECKSUM and DATASUM are dropped, and
    :func:`cut` recomputes them when the original header had them.
    """
    (x0, x1), (y0, y1) = x, y
    new = {"NAXIS1": x1 - x0, "NAXIS2": y1 - y0}
    for axis, start in ((1, x0), (2, y0)):
        key = f"CRPIX{axis}"
        if key in image.header:
            new[key] = float(image.header[key]) - start
    out = []
    for card in image.cards:
        key = card[:8].rstrip().decode("ascii")
        if key in new:
            comment = image.header.comments[key]
            out.append(_card(key, new.pop(key), comment))
        elif key in ("CHECKSUM", "DATASUM"):
            continue
        else:
            out.append(card)
    return b"".join(out)


def _ones_complement_sum(data: bytes | np.ndarray) -> int:
    """The FITS 32-bit ones'-complement sum of big-endian words (length multiple of 4)."""
    words = np.frombuffer(data, dtype=">u4")
    total = int(words.sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _add(a: int, b: int) -> int:
    total = a + b
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def checksum(cards: bytes, data: bytes | np.ndarray) -> bytes:
    """Header cards (without END) completed with DATASUM, CHECKSUM, END and padding.

    CHECKSUM makes the HDU (header + padded data) sum to -0, as FITS 4.0 §J
    prescribes; padding with zeros does not change the data sum.
    """
    datasum = _ones_complement_sum(data)
    stamp = "data unit checksum"
    head = cards + _card("DATASUM", str(datasum), stamp)
    zeros = _card("CHECKSUM", "0" * 16, "HDU checksum")
    block = _pad(head + zeros + _END, b" ")
    total = _add(_ones_complement_sum(block), datasum)
    final = _card("CHECKSUM", encode_checksum(~total & 0xFFFFFFFF), "HDU checksum")
    return _pad(head + final + _END, b" ")


@dataclass
class CutoutBytes:
    """A finished FITS file in parts: the bytes to send, in order."""

    parts: list[bytes]
    shape: tuple[int, int]

    @property
    def length(self) -> int:
        return sum(len(p) for p in self.parts)


def read_pixels(image: ImageFile, x: tuple[int, int], y: tuple[int, int]) -> bytearray:
    """The big-endian bytes of pixels [y0:y1, x0:x1], read row by row from the file.

    Each row's run of the cutout's columns is read straight into the output
    buffer (``os.preadv``): exactly the bytes the cutout holds are read, with
    no intermediate copy; a cutout as wide as the image is one read.
    """
    (x0, x1), (y0, y1) = x, y
    ny, nx = image.shape
    item = image.dtype.itemsize
    width = (x1 - x0) * item
    out = bytearray(width * (y1 - y0))
    view = memoryview(out)
    fd = os.open(image.path, os.O_RDONLY)
    try:
        start = image.data_offset + (y0 * nx + x0) * item
        if x1 - x0 == nx:
            rows = [view]
        else:
            rows = [view[r * width:(r + 1) * width] for r in range(y1 - y0)]
        for r, buf in enumerate(rows):
            got = os.preadv(fd, [buf], start + r * nx * item)
            if got != len(buf):
                raise OSError(f"{image.path}: short read of the image data")
    finally:
        os.close(fd)
    return out


def cut(image: ImageFile, x: tuple[int, int], y: tuple[int, int]) -> CutoutBytes:
    """Pixels [y0:y1, x0:x1] of the image as a two-HDU FITS file.

    Only the cutout's bytes are read (:func:`read_pixels`); the pixels stay
    in the file's big-endian type, byte for byte.
    """
    (x0, x1), (y0, y1) = x, y
    data = read_pixels(image, x, y)
    cards = cutout_header(image, x, y)
    if "CHECKSUM" in image.header or "DATASUM" in image.header:
        header = checksum(cards, data)
    else:
        header = _pad(cards + _END, b" ")
    # a response writes bytes only: one copy of the pixels, after the checksum
    return CutoutBytes([image.primary_bytes, header, bytes(data),
                        b"\0" * (-len(data) % BLOCK)],
                       (y1 - y0, x1 - x0))


def header_only(image: ImageFile, x: tuple[int, int], y: tuple[int, int]) -> bytes:
    """The (cut) image header alone, as SODA's KIND=HEADER returns it."""
    return _pad(cutout_header(image, x, y) + _END, b" ")


def whole_image(image: ImageFile) -> list[tuple[str, int, int] | bytes]:
    """The uncut image as parts: both headers verbatim, then the data unit's byte range."""
    return [image.primary_bytes, image.header_bytes,
            (image.path, image.data_offset, image.data_span)]


def fits_bytes(cut_bytes: CutoutBytes) -> bytes:
    """The finished cutout as one FITS file's bytes (what SODA sends)."""
    return b"".join(bytes(p) for p in cut_bytes.parts)


# ------------------------------------------------------------ SODA's geometry

_WCS_KEYS = ("CD1_1", "CDELT1", "PC1_1", "CNPIX1")


def sky_wcs(header: fits.Header) -> Any:
    """The celestial WCS of a 2-d image header, built as DaCHS's ``coords.getWCS`` builds it.

    The same sanitising (``*_ORDER = 0`` and ``X/YPIXELSZ`` dropped) and the
    same ``relax=True``, so that the pixel limits below are the service's.
    """
    from astropy.wcs import WCS

    if not any(key in header for key in _WCS_KEYS):
        raise ValueError("the image has no celestial WCS")
    header = header.copy()
    for key in ("AP_ORDER", "BP_ORDER", "A_ORDER", "B_ORDER"):
        if header.get(key) == 0:
            del header[key]
    for key in ("XPIXELSZ", "YPIXELSZ"):
        header.remove(key, ignore_missing=True)
    return WCS(header, relax=True, naxis=[1, 2])


def _rot_z(angle: float) -> tuple[tuple[float, ...], ...]:
    c, s = math.cos(angle), math.sin(angle)
    return ((c, s, 0.0), (-s, c, 0.0), (0.0, 0.0, 1.0))


def _rot_x(angle: float) -> tuple[tuple[float, ...], ...]:
    c, s = math.cos(angle), math.sin(angle)
    return ((1.0, 0.0, 0.0), (0.0, c, s), (0.0, -s, c))


def _dot(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(a[i] * b[i] for i in (0, 1, 2))


def _mat_mul(a: tuple[tuple[float, ...], ...], b: tuple[tuple[float, ...], ...]
             ) -> tuple[tuple[float, ...], ...]:
    cols = tuple(tuple(b[r][c] for r in (0, 1, 2)) for c in (0, 1, 2))
    return tuple(tuple(_dot(row, col) for col in cols) for row in a)


def circle_polygon(ra: float, dec: float, radius: float, segments: int = 32
                   ) -> list[tuple[float, float]]:
    """The (ra, dec) degrees of the polygon DaCHS puts around a SODA circle.

    ``pgsphere.SCircle.asPoly`` step by step (the circle drawn around the pole
    and rotated to its centre, in the same floating-point order), then
    ``SPoly.asCooPairs``: the vertices whose pixel box the service cuts.
    """
    deg = math.pi / 180
    x, y, r = ra * deg, dec * deg, radius * deg
    ring, inner = math.sin(r), math.cos(r)
    rotation = _mat_mul(_rot_z(math.pi / 2 - x), _rot_x(math.pi / 2 - y))
    out = []
    for i in range(segments):
        angle = 2. * i * math.pi / segments
        vec = (ring * math.sin(angle), ring * math.cos(angle), inner)
        cx, cy, cz = (_dot(rotation[k], vec) for k in (0, 1, 2))
        in_xy = math.sqrt(cx ** 2 + cy ** 2)
        theta = 0 if abs(in_xy) < 1e-9 else math.atan2(cy, cx)
        if theta < 0:
            theta += 2 * math.pi
        phi = math.atan2(cz, in_xy)
        out.append((theta / deg, phi / deg))
    return out


def circle_limits(image: ImageFile, wcs: Any, ra: float, dec: float, radius: float
                  ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """0-based [x0, x1), [y0, y1) that SODA cuts for ``CIRCLE ra dec radius``; None: no overlap.

    ``coords.getPixelLimits`` of DaCHS 2.7 on :func:`circle_polygon`: the
    vertices' pixel positions rounded, the box clipped to the image, an axis
    left whole when it covers all of it, then :func:`axis_slice`.  A box
    wholly off the image, or clipped to nothing, is SODA's "no overlap".
    """
    ny, nx = image.shape
    pairs = [(min(359.99999, max(-89.9999, a)), min(89.9999, max(-89.9999, d)))
             for a, d in circle_polygon(ra, dec, radius)]
    # a vertex that does not project (beyond the tangent plane) is NaN, which
    # DaCHS casts to an integer all the same (the platform's INT_MIN)
    with image.lock, np.errstate(invalid="ignore"):
        pixels = np.asarray(np.round(wcs.wcs_world2pix(pairs, 1)), np.int32)
    xs, ys = [int(pixels[:, 0].min()), int(pixels[:, 0].max())], [
        int(pixels[:, 1].min()), int(pixels[:, 1].max())]
    if xs[1] < 0 or ys[1] < 0 or xs[0] > nx or ys[0] > ny:
        return None
    xs = [max(xs[0], 1), min(xs[1], nx)]
    ys = [max(ys[0], 1), min(ys[1], ny)]
    limits = {}
    if xs != [1, nx]:
        limits[1] = xs
    if ys != [1, ny]:
        limits[2] = ys
    if any(lo == hi for lo, hi in limits.values()):
        return None
    return (axis_slice(nx, *limits.get(1, (None, None))),
            axis_slice(ny, *limits.get(2, (None, None))))
