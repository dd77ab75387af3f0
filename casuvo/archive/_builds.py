# SPDX-License-Identifier: BSD-3-Clause
"""What the coverage products (MOCs, HiPS) share: their error and their work area.

Whether a MOC or HiPS is up to date with its products is the ledger's answer
(:mod:`casuvo.storage.uptodate`: the SHA-256 of every input, the parameters,
and the checksums of what the last build wrote).  Staging areas, half-made
outputs and Hipsgen logs live under ``var/data/coverage-build``, which is never
served.
"""

from __future__ import annotations

from pathlib import Path

from casuvo.config import Settings

__all__ = ["CoverageError", "work_dir"]


class CoverageError(RuntimeError):
    """A MOC or HiPS could not be made; the message names the collection, band or file."""


def work_dir(settings: Settings) -> Path:
    """Staging, half-made outputs and Hipsgen logs (never served)."""
    return settings.data_dir / "coverage-build"
