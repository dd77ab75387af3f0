# SPDX-License-Identifier: BSD-3-Clause
"""Media types of the coverage files DaCHS's ``static`` renderer serves.

DaCHS (``gavo.web.common``) maps every ``.fits`` file to ``image/fits`` and serves
files without an extension as HTML.  The coverage files of ``resdir/coverage``
need better: a MOC is a FITS binary table, ``application/fits`` (MOC 2.0,
section 4.3), and a HiPS ``properties`` file or HiPS list is plain text
(``text/plain``, HiPS 1.0, section 4.4) that a browser must not render as HTML.
Only these file names are affected; every other static file keeps DaCHS's type.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["install", "media_type"]

#: exact file names served as text (HiPS 1.0 metadata files)
TEXT_FILES = frozenset({"properties", "hipslist"})
TEXT_PLAIN = "text/plain; charset=utf-8"
FITS_TABLE = "application/fits"


def media_type(file_name: str) -> str | None:
    """The media type casuvo sends for ``file_name``, or None for DaCHS's own choice."""
    if file_name in TEXT_FILES:
        return TEXT_PLAIN
    if file_name.lower().endswith("moc.fits"):   # <collection>.moc.fits, a HiPS's Moc.fits
        return FITS_TABLE
    return None


def install() -> None:
    """Give the static files named above their media types (idempotent)."""
    from gavo.web import ifpages

    render = ifpages.StaticFile.render
    if getattr(render, "casuvo_media_types", False):
        return

    def render_with_type(self: Any, request: Any) -> Any:
        name = os.path.basename(self.path)
        wanted = media_type(name)
        if wanted is not None:
            # twisted derives the type from the extension at render time, from
            # the instance's tables: override them for this file only.
            ext = os.path.splitext(name)[1].lower()
            self.contentTypes = {**self.contentTypes, ext: wanted}
            self.defaultType = wanted
        return render(self, request)

    render_with_type.casuvo_media_types = True  # type: ignore[attr-defined]
    ifpages.StaticFile.render = render_with_type
