# SPDX-License-Identifier: BSD-3-Clause
"""Release rules of a survey's ``[access]``, the session setting, policies kept by ingests."""

from __future__ import annotations

import base64
from datetime import date

import pytest
from psycopg import sql

from casuvo.dachs.httpguard import credentials_problem
from casuvo.storage.access import ALL_GROUPS, ANONYMOUS, groups_setting, server_environment
from casuvo.storage.ingest.policies import Policy
from casuvo.surveys.access import AccessPolicy, Embargo, access_policy


def test_default_is_one_year_after_the_night() -> None:
    policy = access_policy({}, "vista")
    assert policy.group == "vista"
    assert policy.release("20240510") == date(2025, 5, 10)
    assert policy.release(20240229) == date(2025, 2, 28)  # 365 days after a leap day


def test_embargoes_extend_and_the_latest_rule_wins() -> None:
    policy = access_policy({"access": {"group": "vvv", "proprietary_days": 30, "embargo": [
        {"night": 20240524, "until": "2099-12-31"},
        {"field": "vvv_disc", "until": "2030-01-01"},
        {"field": "vvv_disc", "night": "20240101", "until": "2020-01-01"}]}}, "vista")
    assert policy.group == "vvv"
    assert policy.release("20240510", "vvv_bulge") == date(2024, 6, 9)
    assert policy.release("20240524", "vvv_bulge") == date(2099, 12, 31)
    assert policy.release("20240510", "vvv_disc") == date(2030, 1, 1)
    assert policy.release("20240524", "vvv_disc") == date(2099, 12, 31)
    # an embargo never shortens the period
    assert policy.release("20240101", "vvv_disc") == date(2030, 1, 1)
    assert policy.release("20240510", "vvv_disc", override=date(2024, 7, 1)) == date(2024, 7, 1)


def test_derived_rows_take_the_latest_release() -> None:
    assert AccessPolicy.latest([date(2025, 1, 1), None, date(2026, 1, 1)]) == date(2026, 1, 1)
    assert AccessPolicy.latest([None]) is None


@pytest.mark.parametrize(("section", "text"), [
    ({"proprietary_days": -1}, "proprietary_days"),
    ({"proprietary_days": "a year"}, "proprietary_days"),
    ({"embargo": [{"field": "x"}]}, "no 'until'"),
    ({"embargo": [{"field": "x", "until": "soon"}]}, "not a date"),
])
def test_bad_access_sections_name_the_problem(section: dict, text: str) -> None:
    with pytest.raises(ValueError, match=text) as err:
        access_policy({"access": section}, "vista", "pipelines/vista/config.toml")
    assert "pipelines/vista/config.toml: [access]" in str(err.value)


def test_embargo_matching() -> None:
    assert Embargo(date(2099, 1, 1), field="f").matches("f", "20240101")
    assert not Embargo(date(2099, 1, 1), field="f").matches("g", "20240101")
    assert Embargo(date(2099, 1, 1), night="20240101").matches(None, "20240101")


def test_groups_setting() -> None:
    assert groups_setting(None) == ANONYMOUS
    assert groups_setting([]) == ANONYMOUS
    assert groups_setting(["vvv", "gaiaeso", "vvv"]) == "gaiaeso,vvv"
    assert groups_setting(["x"], everything=True) == ALL_GROUPS
    for bad in ("a,b", "", "a b", "x" * 65, "*"):
        with pytest.raises(ValueError, match="plain name"):
            groups_setting([bad])


def test_server_processes_start_anonymous() -> None:
    assert server_environment({})["PGOPTIONS"] == "-c casuvo.groups=-"
    assert server_environment({"PGOPTIONS": "-c work_mem=8MB"})["PGOPTIONS"] == \
        "-c work_mem=8MB -c casuvo.groups=-"


def test_policy_is_recreated_as_it_was() -> None:
    policy = Policy("vista.sources_x_gaia", "casuvo_release", "PERMISSIVE", ("public",),
                    "SELECT", "(EXISTS ( SELECT 1 FROM vista.sources s))", None)
    assert policy.create().as_string(None) == (
        'CREATE POLICY "casuvo_release" ON "vista"."sources_x_gaia" AS PERMISSIVE FOR SELECT'
        ' TO PUBLIC USING ((EXISTS ( SELECT 1 FROM vista.sources s)))')
    checked = Policy("a.b", "p", "RESTRICTIVE", ("gavo", "untrusted"), "ALL", "(x > 1)",
                     "(x > 2)")
    assert checked.create().as_string(None).endswith(
        'TO "gavo", "untrusted" USING ((x > 1)) WITH CHECK ((x > 2))')
    assert isinstance(checked.create(), sql.Composable)


@pytest.mark.parametrize(("header", "text"), [
    (b"Bearer abc", "another scheme"),
    (b"Basic !!!", "not base64"),
    (b"Basic " + base64.b64encode(b"user-only"), "no user"),
    (b"Basic " + base64.b64encode(b":pw"), "no user"),
    (b"Basic " + base64.b64encode(b"u:p\xff"), "not base64-encoded UTF-8"),
])
def test_unusable_credentials_are_named(header: bytes, text: str) -> None:
    problem = credentials_problem(header)
    assert problem is not None and text in problem


def test_no_credentials_is_no_problem() -> None:
    assert credentials_problem(None) is None
