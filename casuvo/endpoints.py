# SPDX-License-Identifier: BSD-3-Clause
"""The service URLs of a casuvo instance, per protocol and table or collection.

``casuvo endpoints --json`` prints :func:`endpoints`; tests, notebooks and the
client find services through it.  Each service path is the DaCHS path of a
service published in ``resdir/``: ``<rd>/<service id>/<renderer>``.
"""

from __future__ import annotations

from typing import Any

from casuvo.config import Settings

__all__ = ["SERVICES", "endpoints"]

#: protocol -> {table or collection -> service path under the server root}
SERVICES: dict[str, dict[str, str]] = {
    "scs": {"gaia.sources": "gaia/q/cone/scs.xml"},
    "form": {"gaia.sources": "gaia/q/cone/form"},
}


def endpoints(settings: Settings) -> dict[str, Any]:
    """``{"base", "tap", "scs": {...}, ...}`` with absolute URLs."""
    base = settings.server_url.rstrip("/")
    result: dict[str, Any] = {
        "base": base + "/",
        "tap": base + "/tap",
        "examples": base + "/tap/examples",
        "tables": base + "/tap/tables",
    }
    for protocol, services in SERVICES.items():
        result[protocol] = {name: f"{base}/{path}" for name, path in services.items()}
    return result
