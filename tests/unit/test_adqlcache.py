# SPDX-License-Identifier: BSD-3-Clause
"""Which numbers of an ADQL query the translation cache may take out (casuvo.dachs.adqlcache)."""

from __future__ import annotations

from casuvo.dachs.adqlcache import template_of


def test_function_arguments_are_templated_with_their_signs_kept() -> None:
    t = template_of("SELECT * FROM t WHERE 1=CONTAINS(POINT('ICRS', ra, dec),"
                    " CIRCLE('ICRS', 10.5, -50.7, .01))")
    assert t.numbers == ("10.5", "50.7", ".01")
    assert "1=CONTAINS" in t.text and "-\x001\x00" in t.text
    assert t.text == template_of("SELECT * FROM t WHERE 1=CONTAINS(POINT('ICRS', ra, dec),"
                                 " CIRCLE('ICRS', 200, -1e-3, 2E2))").text
    assert t.text != template_of("SELECT * FROM t WHERE 1=CONTAINS(POINT('ICRS', ra, dec),"
                                 " CIRCLE('ICRS', 10.5, 50.7, .01))").text


def test_top_comparisons_strings_names_and_comments_keep_their_numbers() -> None:
    query = ("SELECT TOP 10 g2mass, \"col 1\" FROM t -- CIRCLE(1, 2, 3)\n"
             "WHERE mag < 15 AND name = 'a(1, 2)' AND x IN (1) AND 0 = CONTAINS(p, c)")
    t = template_of(query)
    # only the IN-list's lone item is an argument-like number; nothing else is taken
    assert t.numbers == ("1",)
    assert "TOP 10" in t.text and "mag < 15" in t.text and "'a(1, 2)'" in t.text
    assert "CIRCLE(1, 2, 3)" in t.text and "0 = CONTAINS" in t.text


def test_a_query_without_arguments_is_its_own_template() -> None:
    query = "SELECT COUNT(*) FROM gaia.sources WHERE phot_g_mean_mag < 12"
    assert template_of(query).text == query and template_of(query).numbers == ()
