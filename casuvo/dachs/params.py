# SPDX-License-Identifier: BSD-3-Clause
"""Range checks of service parameters that DaCHS's standard condDescs leave out.

DaCHS parses SCS's RA, DEC and SR but does not range-check them: DEC=100
returns an empty result with status OK.  Likewise SIA 2.0's POS and DALI
intervals (reversed or NaN BAND, TIME, EXPTIME, ... were answered as if valid),
SIA 1.0's POS and SIZE, the web forms' position and radius, and SODA cutouts
that cannot exist (NaN geometry, pixel ranges beyond the image, ranges that
miss it).  Called from the RDs' phraseMakers and SODA data function, these
raise DaCHS's ValidationError (or SODA's NoOverlap), which the server answers
with the protocol's error document and HTTP 400 (see :mod:`casuvo.dachs.errors`
and :mod:`casuvo.dachs.datalinks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_CONE_RADIUS",
    "check_cone",
    "check_form_radius",
    "check_geometry_numbers",
    "check_interval",
    "check_maxrec",
    "check_sia1",
    "check_sia2",
    "check_soda",
]

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
    if hasattr(geom, "center"):
        points = [geom.center]
    elif hasattr(geom, "corner1"):
        points = [geom.corner1, geom.corner2]
    else:
        points = list(getattr(geom, "points", []))
    for point in points:
        if not -90.0 <= math.degrees(point.y) <= 90.0:
            raise base.ValidationError(
                f"a latitude of {math.degrees(point.y):g} degrees is outside [-90, 90]", name)


def check_geometry_numbers(value: str, name: str) -> None:
    """Refuse NaN anywhere in a DALI shape, and infinities in CIRCLE and POLYGON.

    DaCHS's parser takes Python's ``float``, which reads ``nan`` and ``inf``;
    pgSphere then matches nothing (or everything) without complaint.  RANGE
    may use -Inf/+Inf for an open side, as SIA 2.0 allows.
    """
    import math

    from gavo import base

    shape, _, numbers = value.strip().partition(" ")
    for word in numbers.split():
        try:
            number = float(word)
        except ValueError:
            return  # DaCHS's parser names the malformed literal
        if math.isnan(number) or (math.isinf(number) and shape.upper() != "RANGE"):
            raise base.ValidationError(
                f"{name}: {word!r} is not a finite number ({shape} needs finite values)",
                name)


#: SIA 2.0's DALI interval parameters (DaCHS's ``//siap2#parameters``).
SIA2_INTERVALS = ("BAND", "TIME", "FOV", "SPATRES", "SPECRP", "EXPTIME", "TIMERES")
#: ObsCore's calibration levels.
CALIB_LEVELS = range(5)


def check_interval(value: object, name: str) -> None:
    """A DALI interval must have no NaN and its lower bound at most its upper one.

    ``-Inf``/``+Inf`` are DALI's open bounds and stay valid.
    """
    import math

    from gavo import base

    try:
        low, high = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise base.ValidationError(f"{name} must be an interval of two numbers", name
                                   ) from None
    if math.isnan(low) or math.isnan(high):
        raise base.ValidationError(
            f"{name} bounds must be numbers or -Inf/+Inf, not NaN ({low:g} {high:g})", name)
    if low > high:
        raise base.ValidationError(
            f"{name} lower bound {low:g} is above its upper bound {high:g}", name)


def check_sia2(pars: Mapping[str, object]) -> None:
    """Validate SIA 2.0 values beyond DaCHS's syntax check.

    POS: finite numbers, radius > 0, |latitude| ≤ 90; the DALI intervals
    (BAND, TIME, FOV, SPATRES, SPECRP, EXPTIME, TIMERES): no NaN, lower ≤ upper;
    CALIB: an ObsCore calibration level (0–4).
    """
    from gavo import base
    from gavo.protocols import siap

    for value in pars.get("POS") or []:
        check_geometry_numbers(value, "POS")
        _check_geometry(siap.parseSIAP2Geometry(value), "POS")
    for name in SIA2_INTERVALS:
        for value in pars.get(name) or []:
            check_interval(value, name)
    for value in pars.get("CALIB") or []:
        if value not in CALIB_LEVELS:
            raise base.ValidationError(
                f"CALIB={value} is not an ObsCore calibration level (0 to 4)", "CALIB")


def check_sia1(pars: Mapping[str, object]) -> None:
    """Validate SIA 1.0 POS (two finite numbers, RA in [0, 360], |Dec| ≤ 90) and SIZE
    (one or two numbers, positive, at most 10 degrees).

    Runs before DaCHS's own SIA 1.0 condDesc, which builds the search box
    from these values and failed on NaN (an SQL syntax error) and on an
    infinite SIZE (a 500), and silently wrapped an RA beyond 360.
    """
    import math

    from gavo import base

    size = pars.get("SIZE")
    if size:
        try:
            values = [float(v) for v in str(size).split(",")]
        except ValueError:
            raise base.ValidationError(f"SIZE={size!r} is not one or two numbers", "SIZE"
                                       ) from None
        if len(values) not in (1, 2):
            raise base.ValidationError(f"SIZE={size} must be one or two numbers", "SIZE")
        if not all(0 < v <= MAX_CONE_RADIUS for v in values):
            raise base.ValidationError(
                f"SIZE={size} must be positive and at most {MAX_CONE_RADIUS:g} degrees", "SIZE")
    pos = pars.get("POS")
    if pos:
        try:
            ra, dec = (float(v) for v in str(pos).split(","))
        except ValueError:
            return  # DaCHS's own parser reports malformed positions
        if not (math.isfinite(ra) and math.isfinite(dec)):
            raise base.ValidationError(f"POS={pos} must be two finite numbers", "POS")
        if not 0.0 <= ra <= 360.0:
            raise base.ValidationError(f"POS right ascension {ra:g} is outside [0, 360]", "POS")
        if not -90.0 <= dec <= 90.0:
            raise base.ValidationError(f"POS declination {dec:g} is outside [-90, 90]", "POS")


def check_form_radius(pars: Mapping[str, object], key: str = "hscs_sr",
                      limit: float = MAX_CONE_RADIUS * 60, unit: str = "arcminutes") -> None:
    """A web form's search radius or size: a finite number in (0, ``limit``].

    The forms' field parser reads ``nan`` as a number and DaCHS then matched
    nothing; a negative size matched nothing either; a region wider than the
    protocols' 10 degrees belongs in TAP here as it does for SCS and SIA.
    The cone form's radius is in arcminutes, the image form's size in degrees.
    """
    import math

    from gavo import base

    value = pars.get(key)
    if value is None:
        return
    try:
        size = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # DaCHS names the malformed literal
    if not (math.isfinite(size) and 0 < size <= limit):
        raise base.ValidationError(
            f"{key} must be more than 0 and at most {limit:g} {unit}, not {value}", key)


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


def _shape_numbers(value: object) -> list[float]:
    """The numbers of a parsed SODA CIRCLE or POLYGON in degrees (pgSphere or a list)."""
    import math

    if hasattr(value, "radius"):
        centre = value.center  # type: ignore[attr-defined]
        return [math.degrees(centre.x), math.degrees(centre.y),
                math.degrees(value.radius)]  # type: ignore[attr-defined]
    if hasattr(value, "points"):
        return [math.degrees(c) for p in value.points  # type: ignore[attr-defined]
                for c in (p.x, p.y)]
    return [float(v) for v in value]  # type: ignore[attr-defined]


def _overlaps(low: float, high: float, image_low: float, image_high: float,
              periodic: bool) -> bool:
    shifts = (-360.0, 0.0, 360.0) if periodic else (0.0,)
    return any(max(low + s, image_low) <= min(high + s, image_high) for s in shifts)


def check_soda(descriptor: Any, args: Mapping[str, Any]) -> None:
    """Refuse SODA cutouts that cannot exist, before any pixel is read.

    DaCHS's SODA parsing accepts NaN coordinates (and cut an arbitrary box
    for them), pixel ranges beyond the image (clipped to it, or to one edge
    pixel when entirely outside) and RA/DEC ranges or a POS RANGE that miss
    the image (answered with the whole image).  Each is now a usage error
    naming the parameter, or SODA's NoOverlap when the region misses the
    image.  ``descriptor`` is casuvo's image descriptor: its ``image`` has the
    shape and (after the metaMaker ran) the sky intervals of the image.
    """
    import math

    from gavo import base
    from gavo.protocols import siap, soda
    from gavo.utils import DEG

    for name in ("CIRCLE", "POLYGON"):
        value = args.get(name)
        if value is None:
            continue
        numbers = _shape_numbers(value)
        if not all(math.isfinite(v) for v in numbers):
            raise base.ValidationError(f"{name} must hold finite numbers only", name)
        latitudes = numbers[1:2] if name == "CIRCLE" else numbers[1::2]
        if any(not -90.0 <= lat <= 90.0 for lat in latitudes):
            raise base.ValidationError(f"{name} has a latitude outside [-90, 90]", name)
    ranges: dict[str, tuple[float, float]] = {}
    for name in ("RA", "DEC"):
        if args.get(name) is not None:
            check_interval(args[name], name)
            ranges[name] = tuple(float(v) for v in args[name])  # type: ignore[assignment]
    pos = args.get("POS")
    if pos:
        check_geometry_numbers(pos, "POS")
        geom = siap.parseSIAP2Geometry(pos)
        _check_geometry(geom, "POS")
        if hasattr(geom, "corner1"):
            ranges["POS"] = (geom.corner1.x / DEG, geom.corner2.x / DEG)
            ranges["POS-lat"] = (geom.corner1.y / DEG, geom.corner2.y / DEG)
    intervals = {kind: (lo, hi) for _, _, _, kind, lo, hi
                 in descriptor.image.extras.get("intervals", [])}
    kinds = dict(getattr(descriptor, "axisNames", {}))
    kinds.update({"POS": "WCSLONG", "POS-lat": "WCSLAT"})
    for name, (low, high) in ranges.items():
        bounds = intervals.get(kinds.get(name, ""))
        if bounds and not _overlaps(low, high, *bounds, periodic=kinds[name] == "WCSLONG"):
            raise soda.EmptyData()
    ny, nx = descriptor.image.shape
    for name, length in (("PIXEL_1", nx), ("PIXEL_2", ny)):
        limits = args.get(name)
        if limits is None:
            continue
        low, high = limits
        if low > high:
            raise base.ValidationError(
                f"{name} lower limit {low} is above the upper limit {high}", name)
        if low < 1 or high > length:
            raise base.ValidationError(
                f"{name} {low} {high} is outside the image's pixels 1 to {length}", name)
