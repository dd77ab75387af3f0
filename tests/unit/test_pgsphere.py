# SPDX-License-Identifier: BSD-3-Clause
"""pgSphere values in text form: what casuvo sends and what it reads back (no database).

The expected strings are pgSphere's own output, copied from a pgSphere 1.2
session (``SELECT spoint '(10.123456789012345d, -20.5d)'`` and so on) under each
``set_sphere_output`` mode.
"""

from __future__ import annotations

import math

import pytest

from casuvo.sky.pgsphere import (
    SCircle,
    SPoint,
    SPoly,
    format_scircle,
    format_spoint,
    format_spoly,
    parse_scircle,
    parse_spoint,
    parse_spoly,
)

POINT = SPoint(10.123456789012345, -20.5)


def test_spoint_is_written_in_degrees_with_round_trip_digits() -> None:
    assert format_spoint(POINT) == f"({POINT.ra!r}d , -20.5d)"   # repr: shortest exact
    assert format_spoint(SPoint(1e-5, 0.0)) == "(0.00001d , 0d)"


def test_scircle_and_spoly_are_written_in_degrees() -> None:
    assert format_scircle(SCircle(SPoint(10, -20), 1)) == "<(10d , -20d) , 1d>"
    poly = SPoly.from_degrees([10, 11, 11.5], [20, 20, 21.25])
    assert format_spoly(poly) == "{(10d , 20d),(11d , 20d),(11.5d , 21.25d)}"


@pytest.mark.parametrize(("text", "ra", "dec"), [
    ("(0.176687652651638 , -0.357792496658838)",
     math.degrees(0.176687652651638), math.degrees(-0.357792496658838)),       # RAD
    ("(10.1234567890123d , -20.5d)", 10.1234567890123, -20.5),                 # DEG
    ("( 10d  7m 24.44444s , -20d 30m 0s)", 10 + 7 / 60 + 24.44444 / 3600, -20.5),  # DMS
    ("(  0h 40m 29.629629s , -20d 30m 0s)", 15 * (40 / 60 + 29.629629 / 3600), -20.5),  # HMS
    ("(1.74532925199433e-07 , -1.74532925199433e-09)", 1e-5, -1e-7),          # exponents
])
def test_spoint_is_read_in_every_output_mode(text: str, ra: float, dec: float) -> None:
    point = parse_spoint(text)
    assert point.ra == pytest.approx(ra, rel=1e-13, abs=1e-15)
    assert point.dec == pytest.approx(dec, rel=1e-13, abs=1e-15)


def test_scircle_is_read_in_radians_and_hms() -> None:
    rad = parse_scircle("<(0.174532925199433 , 0.349065850398866) , 0.0174532925199433>")
    hms = parse_scircle("<(  0h 40m 0s , +20d  0m 0s) ,  1d  0m 0s>")
    for circle in (rad, hms):
        assert circle.center.ra == pytest.approx(10.0, rel=1e-13)
        assert circle.center.dec == pytest.approx(20.0, rel=1e-13)
        assert circle.radius == pytest.approx(1.0, rel=1e-13)


def test_spoly_is_read() -> None:
    poly = parse_spoly("{(0.174532925199433 , 0.349065850398866),"
                       "(0.191986217719376 , 0.349065850398866),"
                       "(0.191986217719376 , 0.366519142918809)}")
    ra, dec = poly.as_arrays()
    assert ra == pytest.approx([10, 11, 11], rel=1e-13)
    assert dec == pytest.approx([20, 20, 21], rel=1e-13)


@pytest.mark.parametrize("value", [
    SPoint(359.99999999999994, -89.99999999999999),
    SCircle(SPoint(0.1 + 0.2, 45.000000000000014), 1e-9),
    SPoly.from_degrees([194.3000000000001, 194.31, 194.31], [-64.75, -64.75, -64.7400001]),
])
def test_text_form_round_trips_exactly(value: SPoint | SCircle | SPoly) -> None:
    fmt, parse = {SPoint: (format_spoint, parse_spoint),
                  SCircle: (format_scircle, parse_scircle),
                  SPoly: (format_spoly, parse_spoly)}[type(value)]
    assert parse(fmt(value)) == value


@pytest.mark.parametrize(("make", "message"), [
    (lambda: SPoint(10, 90.5), "latitude"),
    (lambda: SPoint(math.nan, 0), "finite"),
    (lambda: SCircle(SPoint(0, 0), -1), "radius"),
    (lambda: SCircle(SPoint(0, 0), 91), "radius"),
    (lambda: SPoly.from_degrees([0, 1], [0, 1]), "3 vertices"),
    (lambda: parse_spoint("<(1, 2), 3>"), "spoint"),
    (lambda: parse_spoint("(1x , 2)"), "angle"),
    (lambda: parse_scircle("(1 , 2)"), "scircle"),
    (lambda: parse_spoly("(1 , 2)"), "spoly"),
])
def test_bad_values_are_refused(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
