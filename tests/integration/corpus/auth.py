"""Credentials on every service: the authenticated paths' bad input, and their answers.

Every service URL (TAP, SCS, SIA 2 and 1, SODA, DataLink, SSA, the pages) is
asked with credentials that cannot be used — another scheme, bad base64, text
that is not UTF-8, no user — and with well-formed ones that do not check (a
wrong password, an unknown user): each is a 401 with ``WWW-Authenticate:
Basic`` (never a silent anonymous answer, never a 500).  The valid half asks
TAP for proprietary rows with each demo account and checks the counts by the
release rule (``docs/access.md``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import requests

from tests.integration.corpus import Case, qs
from tests.integration.corpus._db import one


def _basic(text: bytes) -> str:
    return "Basic " + base64.b64encode(text).decode("ascii")


#: (case name, Authorization header) that must get a 401
BAD = (
    ("bearer-token", "Bearer abc.def.ghi"),
    ("basic-not-base64", "Basic !!!not-base64"),
    ("basic-no-colon", _basic(b"survey-team")),
    ("basic-empty-user", _basic(b":demo-team-pw")),
    ("basic-not-utf8", _basic(b"survey-team:demo-team-pw\xff")),
    ("wrong-password", _basic(b"survey-team:not-the-password")),
    ("unknown-user", _basic(b"nobody-here:demo-team-pw")),
)

#: (account, password, groups it is in; None: all)
ACCOUNTS = (("survey-team", "demo-team-pw", None), ("vvv-member", "demo-vvv-pw", ("vvv",)),
            ("outsider", "demo-outsider-pw", ()))


def _challenged(answer: requests.Response) -> None:
    assert "basic" in answer.headers.get("www-authenticate", "").lower(), \
        "no WWW-Authenticate: Basic header"


def _service_urls(endpoints: dict) -> list[tuple[str, str]]:
    """(service key, URL) of every query service and page."""
    out = [("tap", endpoints["tap"] + "/sync")]
    for key in ("scs", "sia", "sia1", "soda", "datalink", "ssa", "pages"):
        out += [(key, url) for url in sorted(endpoints.get(key, {}).values())]
    return out


def _count_check(groups: tuple[str, ...] | None):
    """The answer's count equals the rows of vista.images the release rule gives
    ``groups`` (None: every group), counted by the unfiltered superuser."""
    def check(answer: requests.Response) -> None:
        from io import BytesIO

        from astropy.io.votable import parse_single_table

        if groups is None:
            expected = one("SELECT count(*) FROM vista.images")
        else:
            expected = one("SELECT count(*) FROM vista.images WHERE release_date <= now()"
                           " OR owner_group = ANY(%s)", list(groups))
        got = int(parse_single_table(BytesIO(answer.content)).to_table()["n"][0])
        assert got == expected, f"{got} rows, the release rule gives {expected}"
        # the outsider must miss VISTA's proprietary images, VVV's members must not
        total = one("SELECT count(*) FROM vista.images")
        assert groups is None or (expected < total) == ("vvv" not in groups)
    return check


def cases(endpoints: dict) -> Iterator[Case]:
    for service, url in _service_urls(endpoints):
        for name, header in BAD:
            yield Case("auth", f"{service}-{name}", url, status=401, authorization=header,
                       check=_challenged)
    query = "SELECT COUNT(*) AS n FROM vista.images"
    for user, password, groups in ACCOUNTS:
        yield Case("auth", f"tap-count-as-{user}", endpoints["tap"] + "/sync",
                   qs(("LANG", "ADQL"), ("QUERY", query)), status=200,
                   authorization=_basic(f"{user}:{password}".encode()),
                   check=_count_check(groups))
