# SPDX-License-Identifier: BSD-3-Clause
"""The pixel side of casuvo's SODA service: image layouts, cutouts, FITS bytes.

DaCHS's stock FITS SODA functions (``//soda#fits_standardDLFuncs``) open the
whole product with astropy on every request, parse every header up to the
image, build an astropy WCS, copy the HDU into a new ``HDUList``, write it to a
temporary file (verifying every card) and serve that file, gzip-compressed
on the server's single reactor thread when the client accepts gzip.  For a
1′ cutout that is 25–40 ms of work around well under 1 ms of pixels; for a
10′ cutout of a tile the gzip of 12 MB of float32 noise dominates.

This module does the same cutouts with DaCHS's own geometry (the caller
passes the pixel limits DaCHS's ``coords.getPixelLimits`` computes) but:

1. **Layout cache** (:func:`image_file`): an image's headers, their raw
   bytes, its data offset, shape and type, and its sky WCS are read once per
   file version (path, size, mtime, inode) and kept in a small LRU.
2. **Row reads** (:func:`read_pixels`): each row's run of the cutout's
   columns is read from the file straight into the response buffer, so only
   the bytes the cutout holds are read; nothing decodes the whole HDU.
3. **Card-level headers** (:func:`cutout_header`): the image header's 80-byte
   cards are copied; only NAXISn, CRPIXn, CHECKSUM and DATASUM are rewritten.
4. **Cheap checksums** (:func:`checksum`): DATASUM and CHECKSUM of a cutout
   are recomputed with numpy (a 32-bit ones'-complement sum, a few ms for
   12 MB), so a cutout never carries its parent's stale checksums.
5. **Direct response** (:class:`FITSResponse`): the bytes are written to the
   request with an exact Content-Length and no gzip (float pixels shrink by a
   few per cent at zlib level 3 and cost ~50 ms per MB of reactor time); a
   whole image (no cut) is streamed from the file, never held in memory.

The output is what casuvo's SODA always returned: the product's primary
header (verbatim, so its own CHECKSUM stays valid) and one image extension.
"""

from __future__ import annotations

import collections
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits

__all__ = ["CutoutBytes", "FITSResponse", "ImageFile", "axis_slice", "checksum", "cut",
           "cutout_header", "encode_checksum", "header_only", "image_file", "read_pixels",
           "whole_image"]

BLOCK = 2880
CARD = 80
_END = b"END".ljust(CARD)
#: Bytes per write when a whole image is streamed from its file.
STREAM_CHUNK = 1 << 20
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


_EXCLUDE = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))


def encode_checksum(value: int) -> str:
    """The 16-character ASCII encoding of a 32-bit checksum (FITS 4.0, Appendix J)."""
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        ch = [byte // 4 + 0x30] * 4
        ch[0] += byte % 4
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                if ch[j] in _EXCLUDE or ch[j + 1] in _EXCLUDE:
                    ch[j] += 1
                    ch[j + 1] -= 1
                    changed = True
        for j in range(4):
            asc[4 * j + i] = ch[j]
    return "".join(chr(asc[(k + 15) % 16]) for k in range(16))


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
    # twisted writes bytes only: one copy of the pixels, after the checksum
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


class _Segments:
    """A read-only file object over bytes and (path, offset, length) ranges."""

    def __init__(self, parts: list[Any]) -> None:
        self._parts = collections.deque(parts)
        self._file: Any = None
        self._left = 0

    def read(self, size: int) -> bytes:
        while self._parts or self._file is not None:
            if self._file is not None:
                chunk = self._file.read(min(size, self._left))
                self._left -= len(chunk)
                if self._left <= 0 or not chunk:
                    self._file.close()
                    self._file = None
                if chunk:
                    return chunk
                continue
            part = self._parts.popleft()
            if isinstance(part, tuple):
                path, offset, self._left = part
                self._file = open(path, "rb")  # noqa: SIM115 - closed when exhausted
                self._file.seek(offset)
                continue
            if part:
                return bytes(part)
        return b""

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._parts.clear()


class FITSResponse:
    """A twisted resource that sends a FITS file made of parts, without gzip.

    DaCHS wraps every resource in twisted's gzip encoder; for FITS pixels
    that buys a few per cent at the cost of compressing on the reactor
    thread, which blocks every other request.  :meth:`render` drops the
    encoder for this response and sets an exact Content-Length.  In-memory
    parts are written at once; a file range (a whole image) is streamed.
    """

    isLeaf = True  # noqa: N815 - twisted's name
    type = "image/fits"  # DaCHS's dlget names the attachment after it

    def __init__(self, parts: list[Any], length: int, media_type: str = "image/fits"
                 ) -> None:
        self.parts, self.length, self.type = parts, length, media_type

    def render(self, request: Any) -> Any:
        from twisted.web import server, static

        request._encoder = None       # twisted's per-request encoder (gzip)
        request.responseHeaders.removeHeader(b"content-encoding")
        request.setHeader(b"content-type", self.type.encode("ascii"))
        request.setHeader(b"content-length", str(self.length).encode("ascii"))
        if request.method == b"HEAD":
            request.finish()
            return server.NOT_DONE_YET
        if any(isinstance(p, tuple) for p in self.parts):
            producer = static.NoRangeStaticProducer(request, _Segments(self.parts))
            producer.bufferSize = STREAM_CHUNK
            producer.start()
            return server.NOT_DONE_YET
        for part in self.parts:
            if len(part):
                request.write(part)
        request.finish()
        return server.NOT_DONE_YET
