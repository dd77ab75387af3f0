# SPDX-License-Identifier: BSD-3-Clause
"""The notebook client of a casuvo data centre (layer: client).

Owns what an astronomer's Python session does against the services: find
images through TAP, resolve DataLink and take SODA cutouts, in parallel on
Dask threads or a distributed client.  It speaks only HTTP (pyvo, requests)
and may import :mod:`casuvo.config` and :mod:`casuvo.surveys`; it never
imports the server side (:mod:`casuvo.dachs`), the database (psycopg) or the
command line.
"""

from __future__ import annotations

from casuvo.client.archive import (
    DEFAULT_COLUMNS,
    DEFAULT_RADIUS,
    DEFAULT_SIZE,
    IMAGE_TYPES,
    KNOWN_ARCHIVES,
    Archive,
    ArchiveError,
    Cutout,
    CutoutError,
    CutoutWarning,
)

__all__ = [
    "DEFAULT_COLUMNS",
    "DEFAULT_RADIUS",
    "DEFAULT_SIZE",
    "IMAGE_TYPES",
    "KNOWN_ARCHIVES",
    "Archive",
    "ArchiveError",
    "Cutout",
    "CutoutError",
    "CutoutWarning",
]
