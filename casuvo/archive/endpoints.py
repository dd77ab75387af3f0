# SPDX-License-Identifier: BSD-3-Clause
"""The service URLs of a casuvo instance, per protocol and table or collection.

``casuvo endpoints --json`` prints :func:`endpoints`; tests, notebooks and the
client find services through it.  Each service path is the DaCHS path of a
service published in ``resdir/``: ``<rd>/<service id>/<renderer>``.
"""

from __future__ import annotations

from typing import Any

from casuvo.config import Settings

__all__ = ["HIPS_BANDS", "SERVICES", "endpoints", "hips_service_url"]

#: protocol -> {table or collection -> service path under the server root}
SERVICES: dict[str, dict[str, str]] = {
    "scs": {"gaia.sources": "gaia/q/cone/scs.xml",
            "vista.sources": "vista/q/cone/scs.xml",
            "vst.sources": "vst/q/cone/scs.xml"},
    "form": {"gaia.sources": "gaia/q/cone/form",
             "vista.sources": "vista/q/cone/form",
             "vst.sources": "vst/q/cone/form",
             "vista.images": "vista/q/sia1/form",
             "vst.images": "vst/q/sia1/form"},
    # SIA 2.0 (``sia``) and 1.0 (``sia1``), per image collection
    "sia": {"vista": "vista/q/sia2/siap2.xml", "vst": "vst/q/sia2/siap2.xml"},
    "sia1": {"vista": "vista/q/sia1/siap.xml", "vst": "vst/q/sia1/siap.xml"},
    # SODA sync cutouts (dlget) and DataLink documents (dlmeta), ID = obs_publisher_did
    "soda": {"vista": "vista/q/dl/dlget", "vst": "vst/q/dl/dlget"},
    "datalink": {"vista": "vista/q/dl/dlmeta", "vst": "vst/q/dl/dlmeta"},
    # web archive pages per image collection; an image's page is ``<image>/<accref>``
    "pages": {f"{c}.{page}": f"{c}/q/{path}" for c in ("vista", "vst") for page, path in (
        ("overview", "overview/volatile"), ("search", "sia1/form"), ("image", "image/qp"))},
}

#: HiPS and MOCs of the imaging collections (resdir/coverage; `casuvo coverage` makes them)
HIPS_PATH = "coverage/q/hips/static"
MOC_PATH = "coverage/q/moc/static"
#: the demo survey's bands, one HiPS each (``<collection>.<band>``; the FILTER keyword)
HIPS_BANDS: dict[str, tuple[str, ...]] = {"vista": ("J", "H", "Ks"),
                                          "vst": ("u", "g", "r", "i", "Halpha")}
SERVICES["hips"] = {f"{c}.{b}": f"{HIPS_PATH}/{c}/{b}" for c, bands in HIPS_BANDS.items()
                    for b in bands}
SERVICES["moc"] = {c: f"{MOC_PATH}/{c}.moc.fits" for c in HIPS_BANDS}


def hips_service_url(settings: Settings, collection: str, band: str) -> str:
    """``hips_service_url`` of a HiPS: its directory on this server (no trailing slash)."""
    return f"{settings.server_url.rstrip('/')}/{HIPS_PATH}/{collection}/{band}"


def endpoints(settings: Settings) -> dict[str, Any]:
    """``{"base", "tap", "scs": {...}, ...}`` with absolute URLs."""
    base = settings.server_url.rstrip("/")
    result: dict[str, Any] = {
        "base": base + "/",
        "tap": base + "/tap",
        "examples": base + "/tap/examples",
        "tables": base + "/tap/tables",
        "hipslist": f"{base}/{HIPS_PATH}/hipslist",
    }
    for protocol, services in SERVICES.items():
        result[protocol] = {name: f"{base}/{path}" for name, path in services.items()}
    return result
