# SPDX-License-Identifier: BSD-3-Clause
"""Range checks of service parameters that DaCHS's standard condDescs leave out.

DaCHS parses SCS's RA, DEC and SR but does not range-check them: DEC=100
returns an empty result with status OK.  Called from the RDs' phraseMakers, these
raise DaCHS's ValidationError, which the server answers with the protocol's
error document and HTTP 400 (see :mod:`casuvo.dachs.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["MAX_CONE_RADIUS", "check_cone", "check_maxrec", "check_sia1", "check_sia2"]

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


def _check_geometry(geom: object, name: str) -> None:
    """Latitude range and a positive radius for a parsed SIA 2.0 / SODA geometry."""
    import math

    from gavo import base

    radius = getattr(geom, "radius", None)
    if radius is not None and not 0 < math.degrees(radius) <= MAX_CONE_RADIUS:
        raise base.ValidationError(
            f"the CIRCLE radius must be between 0 (exclusive) and {MAX_CONE_RADIUS:g} degrees,"
            f" not {math.degrees(radius):g}", name)
    points = [geom.center] if hasattr(geom, "center") else list(getattr(geom, "points", []))
    for point in points:
        if not -90.0 <= math.degrees(point.y) <= 90.0:
            raise base.ValidationError(
                f"a latitude of {math.degrees(point.y):g} degrees is outside [-90, 90]", name)


def check_sia2(pars: Mapping[str, object]) -> None:
    """Validate SIA 2.0 POS values beyond DaCHS's syntax check (radius > 0, |dec| ≤ 90)."""
    from gavo.protocols import siap

    for value in pars.get("POS") or []:
        _check_geometry(siap.parseSIAP2Geometry(value), "POS")


def check_sia1(pars: Mapping[str, object]) -> None:
    """Validate SIA 1.0 SIZE (positive, at most 10 degrees) and the POS declination."""
    from gavo import base

    size = pars.get("SIZE")
    if size:
        try:
            values = [float(v) for v in str(size).split(",")]
        except ValueError:
            raise base.ValidationError(f"SIZE={size!r} is not one or two numbers", "SIZE"
                                       ) from None
        if not all(0 < v <= MAX_CONE_RADIUS for v in values):
            raise base.ValidationError(
                f"SIZE={size} must be positive and at most {MAX_CONE_RADIUS:g} degrees", "SIZE")
    pos = pars.get("POS")
    if pos:
        try:
            dec = float(str(pos).split(",")[1])
        except (IndexError, ValueError):
            return  # DaCHS's own parser reports malformed positions
        if not -90.0 <= dec <= 90.0:
            raise base.ValidationError(f"POS declination {dec:g} is outside [-90, 90]", "POS")


def check_maxrec(args: Mapping[str, object]) -> None:
    """MAXREC must be a non-negative integer (DaCHS fails with a 500 on a negative one)."""
    from gavo import base

    value = args.get("MAXREC")
    if value in (None, ""):
        return
    try:
        ok = int(value) >= 0  # type: ignore[call-overload]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise base.ValidationError(f"MAXREC must be a non-negative integer, not {value!r}",
                                   "MAXREC")
