# SPDX-License-Identifier: BSD-3-Clause
"""Range checks on literal ADQL geometry that DaCHS and pgSphere let through.

pgSphere accepts ``spoint(radians(10), radians(100))`` and quietly folds the
latitude back, so ``CIRCLE('ICRS', 10, 100, 1)`` would return a cone around
somewhere else.  Installed at server start, these checks turn a literal
latitude outside [-90, 90] in POINT or CIRCLE into an ADQL usage error (HTTP
400 with the message, see :mod:`casuvo.dachs.errors`).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_latitude", "install"]

_installed = False

_SIGNED_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def check_latitude(arg: Any) -> None:
    """Raise DaCHS's RegionError if ``arg`` is a numeric literal outside [-90, 90]."""
    from gavo.adql import common, nodes

    text = nodes.flatten(arg)
    # DaCHS writes a negative literal as "- 90.5" (unary minus), maybe in parentheses
    literal = re.sub(r"[\s()]", "", text)
    if not _SIGNED_NUMBER.fullmatch(literal):
        return  # a column reference or an expression: checked by the database
    value = float(literal)
    if not -90 <= value <= 90:
        raise common.RegionError(
            f"Latitude {literal} in a POINT or CIRCLE is out of range: it must be between"
            " -90 and 90 degrees")


def install() -> None:
    """Wrap the ADQL parse actions of POINT and CIRCLE; idempotent."""
    global _installed
    if _installed:
        return
    from gavo.adql import nodes

    point_kws = nodes.Point._getInitKWs.__func__
    circle_kws = nodes.Circle._getInitKWs.__func__

    def point(cls: type, parse_result: Any) -> dict:
        kws = point_kws(cls, parse_result)
        check_latitude(kws["y"])
        return kws

    def circle(cls: type, parse_result: Any) -> dict:
        kws = circle_kws(cls, parse_result)
        center = kws.get("center")
        if isinstance(center, nodes.Point):
            check_latitude(center.y)
        return kws

    nodes.Point._getInitKWs = classmethod(point)
    nodes.Circle._getInitKWs = classmethod(circle)
    _installed = True
