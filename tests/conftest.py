# SPDX-License-Identifier: BSD-3-Clause
"""Shared fixtures: the running stack's settings and endpoints, and the simulator's truth.

Integration tests talk to the instance that ``make test`` started (``casuvo
demo``); they discover its services through ``casuvo endpoints --json`` like
any user would, and compare answers with the simulator's own files.
"""

from __future__ import annotations

import base64
import json
import locale
import os
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.table import Table, vstack

from casuvo.config import Settings
from casuvo.surveys.registry import Registry, load_registry

# Every skip is a failure (tests/noskip.py): pytest finds hooks among a conftest's
# names, and this conftest is the parent of all three test directories, so the
# hooks hold for both runs of `make test`.
from tests.noskip import (  # noqa: F401
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

#: the character set this run started with (the locale's, usually UTF-8)
_CTYPE = locale.setlocale(locale.LC_CTYPE)

#: Whom the tests' own HTTP clients act for: the demo's member of every survey team,
#: who sees every product (``services/access.toml``).  The tests of the services'
#: answers compare them with every product and source; what the public, an outsider
#: and a member of one team see is ``tests/integration/test_access.py``'s subject,
#: and its sessions say whom they act for themselves.
MEMBER = ("survey-team", "demo-team-pw")

# The tests' own database connections see every row, as the roles that build the
# tables do: the superuser is never filtered, and DaCHS's views (ObsCore, SSA) read
# their tables under ``casuvo.groups`` (casuvo.storage.access).
os.environ["PGOPTIONS"] = (os.environ.get("PGOPTIONS", "") + " -c casuvo.groups=*").strip()


def _log_in_as_member() -> None:
    """Every requests session of the tests (``requests.get``, pyvo's, astroquery's)
    logs in as the member unless it sets its own ``auth`` (None: anonymous).  The
    compute environment's tests have no HTTP client to log in."""
    try:
        import requests
    except ImportError:
        return
    session_init = requests.Session.__init__

    def member_session_init(self: requests.Session, *args: object, **kwargs: object) -> None:
        session_init(self, *args, **kwargs)
        self.auth = MEMBER

    requests.Session.__init__ = member_session_init  # type: ignore[method-assign]


_log_in_as_member()


def log_in_browser(browser: object) -> None:
    """Make a Chromium (selenium) send the member's credentials with every request,
    as a browser does once its user has logged in."""
    token = base64.b64encode(":".join(MEMBER).encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})  # type: ignore[attr-defined]
    browser.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Give every test the character set the run started with.

    Importing DaCHS (``gavo.base``, as tests of ``casuvo.dachs`` do in this
    process) sets the whole locale to "C", and from then on ``subprocess``
    decodes a child's output as ASCII: a later test reading a ``casuvo``
    command's "2″" would fail on an encoding, not on what it checks.
    """
    if locale.setlocale(locale.LC_CTYPE) != _CTYPE:
        locale.setlocale(locale.LC_CTYPE, _CTYPE)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def registry(settings: Settings) -> Registry:
    """The surveys of this installation (pipelines/*/config.toml)."""
    return load_registry(settings)


@pytest.fixture(scope="session")
def casuvo_bin() -> Path:
    return Path(sys.executable).with_name("casuvo")


@pytest.fixture(scope="session")
def endpoints(casuvo_bin: Path) -> dict:
    out = subprocess.run([str(casuvo_bin), "endpoints", "--json"], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


@pytest.fixture(scope="session")
def gaia_files(settings: Settings) -> list[Path]:
    files = sorted((settings.data_dir / "gaia").glob("gaia_*.fits"))
    assert files, "no simulated Gaia files: `make test` runs `casuvo demo` first"
    return files


@pytest.fixture(scope="session")
def gaia_catalogue(gaia_files: list[Path]) -> Table:
    """The simulated catalogue exactly as ingested (all fields)."""
    return vstack([Table.read(f, hdu=1, character_as_bytes=False) for f in gaia_files],
                  metadata_conflicts="silent")


@pytest.fixture(scope="session")
def image_products(settings: Settings) -> dict[str, list[Path]]:
    """Finished science image products (pawprints and tiles) per imaging collection."""
    from casuvo.archive.imagemeta import image_files

    products = {c: [f.path for f in image_files(settings.data_dir / "products" / c)]
                for c in ("vista", "vst")}
    assert all(products.values()), "no pipeline products: `make test` runs `casuvo demo` first"
    return products


@pytest.fixture(scope="session")
def public_image_products(settings: Settings, image_products: dict[str, list[Path]]
                          ) -> dict[str, list[Path]]:
    """The image products the public sees (release date passed): what MOCs and HiPS are
    made of.  The release dates are the published ones (``<collection>.images``)."""
    import datetime

    import psycopg

    today = datetime.date.today()
    out = {}
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        for collection, paths in image_products.items():
            released = {accref.rsplit("/", 1)[0]: day for accref, day in conn.execute(
                f"SELECT accref, release_date FROM {collection}.images").fetchall()}
            out[collection] = [p for p in paths
                               if released[str(p.relative_to(settings.data_dir))] <= today]
            assert 0 < len(out[collection]) < len(paths), collection
    return out
