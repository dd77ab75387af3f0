# SPDX-License-Identifier: BSD-3-Clause
"""Range checks of service parameters that DaCHS's standard condDescs leave out.

DaCHS parses SCS's RA, DEC and SR but does not range-check them: DEC=100
returns an empty result with status OK.  Called from the RDs' phraseMakers, these
raise DaCHS's ValidationError, which the server answers with the protocol's
error document and HTTP 400 (see :mod:`casuvo.dachs.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["MAX_CONE_RADIUS", "check_cone"]

#: Widest cone (degrees) served by Cone Search; wider queries belong in TAP.
MAX_CONE_RADIUS = 10.0


def check_cone(pars: Mapping[str, float | None]) -> None:
    """Raise a ValidationError naming the parameter if RA, DEC or SR is out of range."""
    from gavo import base

    limits = {"RA": (0.0, 360.0), "DEC": (-90.0, 90.0), "SR": (0.0, MAX_CONE_RADIUS)}
    for name, (low, high) in limits.items():
        value = pars.get(name)
        if value is None:
            continue
        if not low <= value <= high:
            raise base.ValidationError(
                f"{name}={value:g} is out of range: it must be between {low:g} and {high:g}"
                " degrees", name)
