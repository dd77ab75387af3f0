# SPDX-License-Identifier: BSD-3-Clause
"""The partitioned cross-match engine (compute environment; runs on Dask workers).

Catalogue A is cut into HEALPix partitions at an order chosen from the source
density; each partition is matched against B's rows in the same pixel plus a
margin by a vectorised kd-tree kernel, so that no pair across a boundary is
lost or found twice.  A's proper motions can move it to B's epoch.  The
results: all pairs within the radius with Gaia-archive/WFAU match quality,
the best match per A source, and VSA-style neighbour-table columns.  Given two
HATS catalogues instead of tables, each partition is read by its own task on a
worker (:mod:`casuvo.xmatch.hatsrun`), so the catalogues need not fit in one
machine's memory.

- :class:`XmatchArgs`, :func:`run_xmatch`, :class:`XmatchSummary` — a run;
- :class:`TableSpec` — an input table and the columns used;
- :class:`KdTreeKernel` — the kernel and its contract;
- :class:`XmatchError` — a usage error (bad parameters or inputs; nothing written).

This package imports only numpy, scipy, astropy, pyarrow, cdshealpix and Dask:
never the database, DaCHS or the VO client.
"""

from __future__ import annotations

from casuvo.xmatch.catalogue import TableSpec
from casuvo.xmatch.engine import XmatchArgs, XmatchSummary, run_xmatch
from casuvo.xmatch.errors import XmatchError
from casuvo.xmatch.kernel import KdTreeKernel

__all__ = ["KdTreeKernel", "TableSpec", "XmatchArgs", "XmatchError", "XmatchSummary",
           "run_xmatch"]
