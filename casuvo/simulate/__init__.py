# SPDX-License-Identifier: BSD-3-Clause
"""The seeded demo sky: a Gaia DR3-like reference catalogue (and its truth) per demo field,
and the planetary-nebula catalogue of the demo sky.

Same seed and scale, same files: :func:`simulate_demo` leaves a field alone
when its files already hold that simulation, so reruns take well under a
second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from casuvo.simulate.fields import DEMO_FIELDS, Field, field_by_name
from casuvo.simulate.gaia import GaiaFiles, existing_gaia, simulate_gaia, write_gaia
from casuvo.simulate.nebulae import write_pn_catalogue

__all__ = ["DEMO_FIELDS", "Field", "GaiaFiles", "field_by_name", "simulate_demo",
           "simulate_gaia", "write_gaia"]

log = logging.getLogger(__name__)


def simulate_demo(outdir: Path, seed: int = 20161, scale: float = 1.0,
                  fields: Iterable[Field] = DEMO_FIELDS) -> list[GaiaFiles]:
    """Write outdir/gaia/gaia_<field>.fits and outdir/truth/… for each field.

    A field whose two files already exist with the same FIELD, SEED, SCALE
    and simulator version is skipped (``GaiaFiles.skipped``); anything else
    (missing, different, unreadable) is simulated again and replaced atomically.
    Then the planetary-nebula catalogue (:mod:`casuvo.simulate.nebulae`) is
    written from the Gaia truth of the fields that hold nebulae, if they are there.
    """
    outdir = Path(outdir)
    results = []
    for field in fields:
        found = existing_gaia(field, outdir, seed, scale)
        if found is not None:
            log.info("%s: up to date (%d sources), skipped", field.name, found.rows)
            results.append(found)
        else:
            results.append(write_gaia(field, outdir, seed, scale))
    write_pn_catalogue(outdir, seed)
    return results
