# SPDX-License-Identifier: BSD-3-Clause
"""The archive pages' templates and stylesheet (services/templates/casuvo/), without a server.

The stylesheet is inlined as XML text, so it must not contain characters XML
escaping would change; every template must be well-formed XHTML that asks for
the data centre's look (style, banner, footer) the RDs provide.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from casuvo.archive.endpoints import services
from casuvo.config import Settings
from casuvo.surveys.registry import load_registry

TEMPLATES = Path(__file__).parents[2] / "services" / "templates" / "casuvo"
NEVOW = "{http://nevow.com/ns/nevow/0.1}"


def test_stylesheet_survives_xml_text() -> None:
    css = (TEMPLATES / "archive.css").read_text()
    assert not re.search(r"[<>&]", css)
    assert css.count("{") == css.count("}")


@pytest.mark.parametrize("name", ["search.html", "image.html", "overview.html"])
def test_template_asks_for_the_site_look(name: str) -> None:
    root = ET.parse(TEMPLATES / name).getroot()
    renders = {el.get(f"{NEVOW}render") for el in root.iter()}
    assert {"commonhead", "sitestyle", "sitebanner", "sitefooter"} <= renders


def test_every_image_collection_has_its_pages() -> None:
    paths = services(load_registry(Settings.from_env({})))
    collections = set(paths["sia"])
    assert collections == {"vista", "vst"}
    for page in ("overview", "search", "image"):
        assert {k.split(".")[0] for k in paths["pages"] if k.endswith(f".{page}")} \
            == collections
    assert all(paths["pages"][f"{c}.search"] == paths["form"][f"{c}.images"]
               for c in collections)


def test_the_spectroscopic_archive_and_processing_pages_are_listed() -> None:
    registry = load_registry(Settings.from_env({}))
    paths = services(registry)
    assert registry.keys("spectroscopy"), "the demo has spectroscopic surveys"
    assert {k: v for k, v in paths["pages"].items()
            if k.startswith("spectra.") or k in ("processing", "raw")} == {
        "spectra.home": "portal/q/home/volatile",
        "spectra.monitor": "portal/q/monitor/volatile",
        "spectra.ob": "portal/q/ob/volatile",
        "spectra.objects": "portal/q/objects/volatile",
        "spectra.help": "portal/q/help/volatile",
        "raw": "portal/q/raw/volatile",
        "processing": "portal/q/processing/volatile"}
    rd = (TEMPLATES.parents[2] / "resdir" / "portal" / "q.rd").read_text()
    for path in paths["pages"].values():
        if path.startswith("portal/q/"):
            assert f'<service id="{path.split("/")[2]}"' in rd
