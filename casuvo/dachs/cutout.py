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

Steps 1–4 live in :mod:`casuvo.imaging.cutout` (numpy and astropy only), so
that the bulk cutout jobs on Dask workers cut the same bytes; this module
adds the response (5).  The output is what casuvo's SODA always returned: the product's primary
header (verbatim, so its own CHECKSUM stays valid) and one image extension.
"""

from __future__ import annotations

import collections
from typing import Any

from casuvo.imaging.cutout import (
    BLOCK,
    CACHE_SIZE,
    CutoutBytes,
    ImageFile,
    axis_slice,
    checksum,
    cut,
    cutout_header,
    encode_checksum,
    header_only,
    image_file,
    read_pixels,
    whole_image,
)

__all__ = ["BLOCK", "CACHE_SIZE", "CutoutBytes", "FITSResponse", "ImageFile", "axis_slice",
           "checksum", "cut", "cutout_header", "encode_checksum", "header_only", "image_file",
           "read_pixels", "whole_image"]

#: Bytes per write when a whole image is streamed from its file.
STREAM_CHUNK = 1 << 20


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
