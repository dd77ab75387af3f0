"""The pure rules behind casuvo's request checks: paths, methods, numbers, UWS values.

The server-side behaviour (status codes and documents) is covered by the
request corpus (``tests/integration/corpus``); these pin the rules themselves,
including the ones too slow to show over HTTP (the WAIT cap).
"""

from __future__ import annotations

import datetime
import warnings

import pytest

from casuvo.dachs import httpguard, strictnum, uwsparams

with warnings.catch_warnings():
    # DaCHS 2.7 imports sre_constants (deprecated in Python 3.11)
    warnings.simplefilter("ignore", DeprecationWarning)
    from gavo import base


@pytest.mark.parametrize("path", [
    b"/static/%2e%2e/%2e%2e/etc/passwd", b"/static/../x", b"/a/./b", b"//etc/passwd",
    b"/tap//sync", b"/static/%2Fetc%2Fpasswd", b"/static/..%5c..%5cgavo.rc",
    b"/static/a%00b", b"/static/%FF",
])
def test_traversal_paths_are_refused(path: bytes) -> None:
    assert httpguard._path_problem(path)


@pytest.mark.parametrize("path", [
    b"/", b"/tap/sync", b"/tap/async/", b"/vista/q/dl/dlget", b"/static/js/gavo.js",
    b"/coverage/q/hips/static/vst/r/Norder3/Dir0/Npix12.png", "/\u00e9".encode(),
])
def test_ordinary_paths_pass(path: bytes) -> None:
    assert httpguard._path_problem(path) is None


def test_methods_by_resource() -> None:
    assert httpguard.allowed_methods("/tap/sync") == ("GET", "POST", "OPTIONS")
    assert "DELETE" in httpguard.allowed_methods("/tap/async/abc")
    assert "DELETE" not in httpguard.allowed_methods("/tap/async")
    # DaCHS's UWS renderer answers as uws.xml too (user UWS: the bulk cutouts)
    assert "DELETE" in httpguard.allowed_methods("/cutouts/q/bulk/uws.xml/abc")
    assert "DELETE" not in httpguard.allowed_methods("/cutouts/q/bulk/uws.xml")
    assert "POST" not in httpguard.allowed_methods("/tap/capabilities")
    assert "POST" not in httpguard.allowed_methods("/coverage/q/moc/static/vst.moc.fits")
    for path in ("/vst/q/cone/scs.xml", "/vista/q/sia2/siap2.xml", "/vst/q/dl/dlget"):
        assert "PUT" not in httpguard.allowed_methods(path)


@pytest.mark.parametrize("literal", ["1_0", "\u0661\u0662", "\uff11", " 5", "5 ", "0x10",
                                     "nan", "inf", "-Infinity", "1e", ".", ""])
def test_strict_float_refuses(literal: str) -> None:
    with pytest.raises(ValueError, match="not a finite decimal"):
        strictnum.strict_float(literal)


@pytest.mark.parametrize(("literal", "value"), [
    ("1", 1.0), ("-2.5", -2.5), ("+.5", 0.5), ("1e-3", 0.001), ("3.", 3.0), ("1E+2", 100.0)])
def test_strict_float_takes_decimals(literal: str, value: float) -> None:
    assert strictnum.strict_float(literal) == value


def test_strict_int() -> None:
    assert strictnum.strict_int("-12") == -12
    for bad in ("1.0", "1e3", "1_0", "\u0967", "0x1"):
        with pytest.raises(ValueError):
            strictnum.strict_int(bad)


def test_intervals_take_infinite_bounds_only() -> None:
    strictnum.check_literal("-Inf 5e-7", "double", False, "BAND")
    strictnum.check_literal("1 2", "double", False, "BAND")
    with pytest.raises(base.ValidationError, match="BAND"):
        strictnum.check_literal("NaN 5e-7", "double", False, "BAND")
    with pytest.raises(base.ValidationError, match="SR"):
        strictnum.check_literal("inf", "double", True, "SR")
    strictnum.check_literal("\u0661", "char", True, "TARGET")  # text is not a number


def test_wait_is_capped() -> None:
    assert uwsparams.wait_seconds("100000") == uwsparams.WAIT_CAP == 60
    assert uwsparams.wait_seconds("-1") == uwsparams.WAIT_CAP
    assert uwsparams.wait_seconds("5") == 5
    for bad in ("-2", "1.5", "1_0", "\u0661", "", "NaN"):
        with pytest.raises(base.ValidationError, match="WAIT"):
            uwsparams.wait_seconds(bad)


def test_execution_duration_and_destruction() -> None:
    assert uwsparams.check_execution_duration("0", 14_400) == 0
    assert uwsparams.check_execution_duration("14400", 14_400) == 14_400
    for bad in ("-1", "1.5", "14401", "1e3"):
        with pytest.raises(base.ValidationError, match="EXECUTIONDURATION"):
            uwsparams.check_execution_duration(bad, 14_400)
    now = datetime.datetime(2026, 1, 1)
    assert uwsparams.check_destruction("2026-02-01T00:00:00Z", now).month == 2
    for bad in ("2025-12-31T00:00:00Z", "2026-13-01T00:00:00", "tomorrow", "2026-02-01"):
        with pytest.raises(base.ValidationError, match="DESTRUCTION"):
            uwsparams.check_destruction(bad, now)
