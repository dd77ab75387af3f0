# SPDX-License-Identifier: BSD-3-Clause
"""The notebook client of a casuvo data centre (layer: client).

Owns what an astronomer's Python session does against the services: find
images through TAP (:mod:`~casuvo.client.tap`), resolve DataLink
(:mod:`~casuvo.client.datalink`) and take SODA cutouts
(:mod:`~casuvo.client.cutouts`), in parallel on Dask threads or a distributed
client; :class:`Archive` (:mod:`~casuvo.client.archive`) puts them together.
It speaks only HTTP (pyvo, requests) and may import :mod:`casuvo.config` and
:mod:`casuvo.surveys`; it never imports the server side (:mod:`casuvo.dachs`),
the database (psycopg) or the command line.
"""

from __future__ import annotations

from typing import Any

from casuvo.client.archive import Archive
from casuvo.client.cutouts import DEFAULT_SIZE, Cutout
from casuvo.client.errors import ArchiveError, CutoutError, CutoutWarning, UnknownArchiveError
from casuvo.client.tap import DEFAULT_COLUMNS, DEFAULT_RADIUS, IMAGE_TYPES

__all__ = [
    "DEFAULT_COLUMNS",
    "DEFAULT_RADIUS",
    "DEFAULT_SIZE",
    "IMAGE_TYPES",
    "Archive",
    "ArchiveError",
    "Cutout",
    "CutoutError",
    "CutoutWarning",
    "UnknownArchiveError",
]


def __getattr__(name: str) -> Any:
    """``KNOWN_ARCHIVES``, deprecated (see :mod:`casuvo.client.archive`).

    Still importable by name, but not in ``__all__``: a star import does not warn.
    """
    if name == "KNOWN_ARCHIVES":
        from casuvo.client import archive

        return getattr(archive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
