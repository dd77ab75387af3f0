# SPDX-License-Identifier: BSD-3-Clause
"""Survey facts for resource descriptors: LOOP items from the survey registry.

``resdir/common/sources.rd`` declares one set of columns per band and per
colour of a survey's merged source table.  Which bands and colours a survey
has is written once, in its config file (decision 13); the RD's LOOPs get
their items from here (``<codeItems>``), so a survey added to the registry
gets its columns without an RD edit.
"""

from __future__ import annotations

from casuvo.config import Settings
from casuvo.surveys.registry import Survey, load_registry

__all__ = ["band_items", "colour_items"]


def _survey(collection: str) -> Survey:
    return load_registry(Settings.from_env()).by_collection(collection)


def band_items(collection: str) -> list[dict[str, str]]:
    """Macros of ``common/sources#bandColumns`` per band, in merge order."""
    return [{"prefix": b.prefix, "filterName": b.filter, "emWord": b.ucd}
            for b in _survey(collection).bands]


def colour_items(collection: str) -> list[dict[str, str]]:
    """Macros of ``common/sources#colourColumns`` per colour of the band merge."""
    survey = _survey(collection)
    items = []
    for blue, red in survey.colours:
        b, r = survey.band(blue), survey.band(red)
        items.append({"blue": b.prefix, "red": r.prefix, "blueName": b.filter,
                      "redName": r.filter, "blueWord": b.ucd, "redWord": r.ucd})
    return items
