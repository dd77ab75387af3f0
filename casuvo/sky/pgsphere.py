# SPDX-License-Identifier: BSD-3-Clause
"""pgSphere's ``spoint``, ``scircle`` and ``spoly`` as Python values, and their psycopg 3 adapters.

casuvo code never writes a pgSphere literal or parses pgSphere's output itself:
it passes :class:`SPoint`, :class:`SCircle` and :class:`SPoly` (angles in
degrees) as query parameters and gets them back from result rows, once
:func:`register` has taught a connection the types::

    with psycopg.connect(settings.dsn) as conn:
        pgsphere.register(conn)
        inside = conn.execute("SELECT %s @ %s", (SPoint(10.5, -3.2),
                              SCircle(SPoint(10, -3), 1.0))).fetchone()[0]

The adapters use pgSphere's text form (it has no binary one).  Values go in as
degrees (``(10.5d , -3.2d)``, shortest round-trip digits); pgSphere answers
in whatever ``set_sphere_output`` the session chose — radians by default, or
DEG, DMS, HMS — and the loaders read all four, returning degrees.  pgSphere
normalises longitudes into [0°, 360°), so a value read back may differ from
the one written by whole turns.  DaCHS itself (psycopg2) uses its own
``gavo.utils.pgsphere`` classes; those stay inside :mod:`casuvo.dachs`.

This is service-side code (it imports psycopg); the value classes alone need
nothing but the standard library and numpy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.types import TypeInfo

__all__ = ["SCircle", "SPoint", "SPoly", "format_scircle", "format_spoint", "format_spoly",
           "parse_scircle", "parse_spoint", "parse_spoly", "register"]


@dataclass(frozen=True)
class SPoint:
    """A position on the sphere: longitude ``ra`` and latitude ``dec`` in degrees."""

    ra: float
    dec: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ra) and math.isfinite(self.dec)):
            raise ValueError(f"spoint needs finite angles, not ({self.ra}, {self.dec})")
        if abs(self.dec) > 90:
            raise ValueError(f"spoint latitude {self.dec} is outside -90..90 degrees")


@dataclass(frozen=True)
class SCircle:
    """A circle on the sphere: its ``center`` and ``radius`` in degrees (0 … 90)."""

    center: SPoint
    radius: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius) and 0 <= self.radius <= 90):
            raise ValueError(f"scircle radius {self.radius} is outside 0..90 degrees")


@dataclass(frozen=True)
class SPoly:
    """A polygon on the sphere: three or more vertices, joined by great circles."""

    vertices: tuple[SPoint, ...]

    def __post_init__(self) -> None:
        if len(self.vertices) < 3:
            raise ValueError(f"spoly needs at least 3 vertices, not {len(self.vertices)}")

    @classmethod
    def from_degrees(cls, ra: Iterable[float], dec: Iterable[float]) -> SPoly:
        """The polygon of vertex longitudes ``ra`` and latitudes ``dec`` (e.g. a footprint)."""
        return cls(tuple(SPoint(float(a), float(d)) for a, d in zip(ra, dec, strict=True)))

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(ra, dec) arrays of the vertices, in degrees."""
        return (np.array([v.ra for v in self.vertices]),
                np.array([v.dec for v in self.vertices]))


# --------------------------------------------------------------------------- text form

def _deg(value: float) -> str:
    """``value`` with the fewest digits that read back as the same double, no exponent."""
    return np.format_float_positional(float(value), unique=True, trim="-") + "d"


def format_spoint(point: SPoint) -> str:
    """pgSphere's input form of a point, ``(ra d , dec d)``."""
    return f"({_deg(point.ra)} , {_deg(point.dec)})"


def format_scircle(circle: SCircle) -> str:
    """pgSphere's input form of a circle, ``<(ra d , dec d) , radius d>``."""
    return f"<{format_spoint(circle.center)} , {_deg(circle.radius)}>"


def format_spoly(poly: SPoly) -> str:
    """pgSphere's input form of a polygon, ``{(ra d , dec d),…}``."""
    return "{" + ",".join(format_spoint(v) for v in poly.vertices) + "}"


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ANGLE = re.compile(
    rf"\s*(?P<sign>[-+]?)\s*(?:"
    rf"(?P<h>\d+)h\s*(?P<hm>\d+)m\s*(?P<hs>{_NUMBER})s"      # HMS:  0h 40m 29.6s
    rf"|(?P<d>\d+)d\s*(?P<dm>\d+)m\s*(?P<ds>{_NUMBER})s"     # DMS: 10d  7m 24.4s
    rf"|(?P<deg>{_NUMBER})d"                                  # DEG: 10.123d
    rf"|(?P<rad>{_NUMBER})"                                   # RAD: 0.1766
    rf")\s*$")
_POINT = re.compile(r"\(([^(),]*),([^(),]*)\)")
_CIRCLE = re.compile(r"\s*<\s*(\([^()]*\))\s*,([^<>]*)>\s*$")


def _angle(text: str) -> float:
    """Degrees of one angle in any of pgSphere's output forms (RAD, DEG, DMS, HMS)."""
    m = _ANGLE.match(text)
    if m is None:
        raise ValueError(f"not a pgSphere angle: {text!r}")
    sign = -1.0 if m["sign"] == "-" else 1.0
    if m["h"] is not None:
        return sign * 15.0 * (int(m["h"]) + int(m["hm"]) / 60 + float(m["hs"]) / 3600)
    if m["d"] is not None:
        return sign * (int(m["d"]) + int(m["dm"]) / 60 + float(m["ds"]) / 3600)
    if m["deg"] is not None:
        return sign * float(m["deg"])
    return sign * math.degrees(float(m["rad"]))


def _points(text: str) -> list[SPoint]:
    return [SPoint(_angle(lon), _angle(lat)) for lon, lat in _POINT.findall(text)]


def parse_spoint(text: str) -> SPoint:
    """A point from pgSphere's output, ``(lon , lat)``."""
    points = _points(text)
    if len(points) != 1 or not text.strip().startswith("("):
        raise ValueError(f"not a pgSphere spoint: {text!r}")
    return points[0]


def parse_scircle(text: str) -> SCircle:
    """A circle from pgSphere's output, ``<(lon , lat) , radius>``."""
    m = _CIRCLE.match(text)
    if m is None:
        raise ValueError(f"not a pgSphere scircle: {text!r}")
    return SCircle(parse_spoint(m[1]), _angle(m[2]))


def parse_spoly(text: str) -> SPoly:
    """A polygon from pgSphere's output, ``{(lon , lat),…}``."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        raise ValueError(f"not a pgSphere spoly: {text!r}")
    return SPoly(tuple(_points(stripped)))


# --------------------------------------------------------------------------- psycopg 3

class _TextDumper(Dumper):
    """Dumps a value in pgSphere's text form; ``oid`` is set by :func:`register`."""

    text_form: Callable[[Any], str]

    def dump(self, obj: Any) -> Buffer:
        return type(self).text_form(obj).encode()


class SPointDumper(_TextDumper):
    text_form = staticmethod(format_spoint)


class SCircleDumper(_TextDumper):
    text_form = staticmethod(format_scircle)


class SPolyDumper(_TextDumper):
    text_form = staticmethod(format_spoly)


class SPointLoader(Loader):
    def load(self, data: Buffer) -> SPoint:
        return parse_spoint(bytes(data).decode())


class SCircleLoader(Loader):
    def load(self, data: Buffer) -> SCircle:
        return parse_scircle(bytes(data).decode())


class SPolyLoader(Loader):
    def load(self, data: Buffer) -> SPoly:
        return parse_spoly(bytes(data).decode())


_ADAPTERS: tuple[tuple[str, type, type[_TextDumper], type[Loader]], ...] = (
    ("spoint", SPoint, SPointDumper, SPointLoader),
    ("scircle", SCircle, SCircleDumper, SCircleLoader),
    ("spoly", SPoly, SPolyDumper, SPolyLoader),
)


def register(conn: psycopg.Connection) -> None:
    """Teach ``conn`` (and its cursors) pgSphere's ``spoint``, ``scircle`` and ``spoly``.

    The types' OIDs differ between databases, so they are looked up here; a
    parameter then reaches PostgreSQL typed (no cast in the SQL), and result
    columns of these types — and arrays of them — come back as
    :class:`SPoint`, :class:`SCircle`, :class:`SPoly`.
    """
    for name, cls, dumper, loader in _ADAPTERS:
        info = TypeInfo.fetch(conn, name)
        if info is None:
            raise LookupError(f"type {name} unknown in this database: is pg_sphere installed"
                              " (CREATE EXTENSION pg_sphere)?")
        info.register(conn)   # arrays of the type
        conn.adapters.register_dumper(cls, type(dumper.__name__, (dumper,), {"oid": info.oid}))
        conn.adapters.register_loader(info.oid, loader)
