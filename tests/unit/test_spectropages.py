# SPDX-License-Identifier: BSD-3-Clause
"""The spectroscopic pages' parameter checks and coordinate formatting, without a server.

Every page parameter is checked before a page is drawn: a bad value must be
a ValidationError naming that parameter (DaCHS answers it with a 400), and
good values must come out typed.  Sexagesimal positions must round without
ever showing a 60 in a field.
"""

from __future__ import annotations

import warnings

import pytest

from casuvo.dachs import spectropages as sp

with warnings.catch_warnings():
    # DaCHS 2.7 imports sre_constants (deprecated in Python 3.11)
    warnings.simplefilter("ignore", DeprecationWarning)
    from gavo import base


@pytest.mark.parametrize(("ra", "dec", "text"), [
    (232.0145833, -50.7094444, "15:28:03.50 -50:42:34.0"),
    (359.99999999, 89.99999999, "00:00:00.00 +90:00:00.0"),
    (14.99999999, -0.00001, "01:00:00.00 -00:00:00.0"),
    (0.0, 0.0, "00:00:00.00 +00:00:00.0"),
])
def test_sexagesimal_rounds_without_sixty(ra: float, dec: float, text: str) -> None:
    assert sp.sexagesimal(ra, dec) == text


def test_monitor_filter_types_its_values() -> None:
    filt = sp.monitor_filter({"survey": ["ges"], "night": ["20240311"], "status": "completed",
                              "mode": "HR", "field": " ges_1528 "})
    assert filt == sp.MonitorFilter("ges", "ges_1528", 20240311, "completed", "HR")
    assert sp.monitor_filter({}) == sp.MonitorFilter()
    assert sp.monitor_filter({"night": [""], "status": None}) == sp.MonitorFilter()


@pytest.mark.parametrize(("args", "parameter"), [
    ({"survey": "vista"}, "survey"),  # an imaging survey has no OBs here
    ({"night": "20240231"}, "night"),
    ({"night": "2024031"}, "night"),
    ({"status": "done"}, "status"),
    ({"mode": "lr"}, "mode"),
    ({"field": "x" * 65}, "field"),
    ({"field": "a\x00b"}, "field"),
])
def test_monitor_filter_names_the_bad_parameter(args: dict, parameter: str) -> None:
    with pytest.raises(base.ValidationError) as caught:
        sp.monitor_filter(args)
    assert caught.value.colName == parameter


@pytest.mark.parametrize(("args", "parameter"), [
    ({"pos": "15:28:03.5 -50:42:34", "name": "x"}, "pos"),
    ({"pos": "1,2,3"}, "pos"),
    ({"pos": "400,0"}, "pos"),
    ({"pos": "nan,0"}, "pos"),
    ({"pos": "1,2", "radius": "0"}, "radius"),
    ({"pos": "1,2", "radius": "601"}, "radius"),
    ({"pos": "1,2", "radius": "inf"}, "radius"),
    ({"survey": "nosuch", "name": "x"}, "survey"),
])
def test_object_query_names_the_bad_parameter(args: dict, parameter: str) -> None:
    with pytest.raises(base.ValidationError) as caught:
        sp.object_query(args)
    assert caught.value.colName == parameter


def test_object_query_reads_positions_and_names() -> None:
    q = sp.object_query({"pos": "15:28:03.5 -50:42:34", "radius": "30"})
    assert q.ra == pytest.approx(232.0145833, abs=1e-6)
    assert q.dec == pytest.approx(-50.7094444, abs=1e-6)
    assert q.radius_arcsec == 30 and q.name is None and not q.empty
    q = sp.object_query({"pos": "232.01, -50.71"})
    assert (q.ra, q.dec, q.radius_arcsec) == (232.01, -50.71, sp.DEFAULT_RADIUS_ARCSEC)
    assert sp.object_query({"name": "5890160941936410629"}).source_id == 5890160941936410629
    assert sp.object_query({"name": "15282279-5048570"}).source_id is None
    assert sp.object_query({}).empty


def test_ob_key_requires_both() -> None:
    assert sp.ob_key({"survey": "ges", "ob_id": "3001001"}) == ("ges", 3001001)
    for args, parameter in (({"ob_id": "1"}, "survey"), ({"survey": "ges"}, "ob_id"),
                            ({"survey": "ges", "ob_id": "1e3"}, "ob_id")):
        with pytest.raises(base.ValidationError) as caught:
            sp.ob_key(args)
        assert caught.value.colName == parameter


def test_run_log_path_refuses_paths() -> None:
    assert sp.run_log_path("../../etc/passwd") is None
    assert sp.run_log_path("") is None
