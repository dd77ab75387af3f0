# SPDX-License-Identifier: BSD-3-Clause
"""The log format of casuvo's compute-side entry points (``python -m casuvo.…``).

The service-side command line starts these in the compute environment and passes
their output through, so they all write the same INFO lines (time, level,
logger) and keep chatty libraries (Dask's lifecycle, reproject's per-input
messages) at WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(quiet: Iterable[str] = ()) -> None:
    """INFO logging in casuvo's format; the loggers named in ``quiet`` from WARNING up."""
    logging.basicConfig(level=logging.INFO, datefmt="%H:%M:%S", format=FORMAT)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
