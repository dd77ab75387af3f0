# SPDX-License-Identifier: BSD-3-Clause
"""casuvo: the service stack of a wide-area survey data centre.

Survey products (Gaia reference catalogues, VISTA and VST imaging, spectra)
go into PostgreSQL + pgSphere through bulk, ledgered ingestion, and GAVO DaCHS
publishes them through the IVOA standards.  The public API:

- :class:`Settings` — the one configuration, from ``CASUVO_*`` variables;
- :func:`simulate_demo` — the seeded demo sky (Gaia-like reference catalogue);
- :func:`ingest_catalogue` — binary COPY of catalogue files into a published table;
- :func:`endpoints` — the service URLs of a running instance;
- :class:`Archive` — the notebook client of an image archive (``query_radec``, ``cutouts``).
"""

from __future__ import annotations

from casuvo._version import __version__

__all__ = ["Archive", "Settings", "__version__", "endpoints", "ingest_catalogue", "simulate_demo"]


def __getattr__(name: str) -> object:
    # Lazy: the command line starts fast, and compute-side code never pulls in
    # the database layer it does not need.
    if name == "Archive":
        from casuvo.client import Archive

        return Archive
    if name == "Settings":
        from casuvo.config import Settings

        return Settings
    if name == "simulate_demo":
        from casuvo.simulate import simulate_demo

        return simulate_demo
    if name == "ingest_catalogue":
        from casuvo.storage.ingest import ingest_catalogue

        return ingest_catalogue
    if name == "endpoints":
        from casuvo.archive.endpoints import endpoints

        return endpoints
    raise AttributeError(f"module 'casuvo' has no attribute {name!r}")
