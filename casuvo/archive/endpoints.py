# SPDX-License-Identifier: BSD-3-Clause
"""The service URLs of a casuvo instance, per protocol and table or collection.

``casuvo endpoints --json`` prints :func:`endpoints`; tests, notebooks and the
client find services through it.  Each service path is the DaCHS path of a
service published in ``resdir/``: ``<rd>/<service id>/<renderer>``.  The image
collections and their bands come from the survey registry
(:mod:`casuvo.surveys.registry`), so a survey added by a config file gets its
services listed here with no code change; the paths inside a collection's RD
are those of the shared definitions every survey RD is fed into
(``resdir/common/images.rd``, ``sources.rd``).
"""

from __future__ import annotations

from typing import Any

from casuvo.config import Settings
from casuvo.surveys.registry import Registry, load_registry

__all__ = ["HIPS_PATH", "MOC_PATH", "endpoints", "hips_service_url", "services"]

#: HiPS and MOCs of the imaging collections (resdir/coverage; `casuvo coverage` makes them)
HIPS_PATH = "coverage/q/hips/static"
MOC_PATH = "coverage/q/moc/static"

#: The reference catalogue's cone search and form (``resdir/gaia``): Gaia is not
#: a survey of the registry (no pipeline of ours makes it), so it is named here.
_REFERENCE_CONES: dict[str, str] = {"gaia.sources": "gaia/q/cone"}

#: SSA service and spectrum DataLink/SODA service of a spectroscopic collection
#: (``resdir/common/spectra.rd``)
SSA_PATH = "ssa/ssap.xml"
SPECTRUM_DL_PATH = "sdl"

#: (page key, path under ``<collection>/q/``) of each image collection's web pages;
#: an image's page is ``<image>/<accref>``
_PAGES = (("overview", "overview/volatile"), ("search", "sia1/form"), ("image", "image/qp"))
#: (page key, path) of the spectroscopic web archive and the processing status
#: (``resdir/portal``); the per-OB page is ``spectra.ob?survey=<c>&ob_id=<id>``
_PORTAL_PAGES = (("spectra.home", "portal/q/home/volatile"),
                 ("spectra.monitor", "portal/q/monitor/volatile"),
                 ("spectra.ob", "portal/q/ob/volatile"),
                 ("spectra.objects", "portal/q/objects/volatile"),
                 ("spectra.help", "portal/q/help/volatile"),
                 ("raw", "portal/q/raw/volatile"),
                 ("mydata", "portal/q/mydata/volatile"),
                 ("processing", "portal/q/processing/volatile"))


def services(registry: Registry) -> dict[str, dict[str, str]]:
    """protocol -> {table or collection -> service path under the server root}.

    ``scs`` and ``form`` list the Gaia reference catalogue, then each survey
    with a band-merged ``sources`` table, then (``form``) each image archive;
    ``sia`` (SIA 2.0), ``sia1`` (SIA 1.0), ``soda`` (sync cutouts, ``dlget``),
    ``datalink`` (``dlmeta``; ID = obs_publisher_did), ``pages`` (with the
    spectroscopic web archive's and the processing status, ``spectra.*`` and
    ``processing``, when there are spectroscopic surveys), ``hips``
    (one per HiPS band: ``<collection>.<FILTER>``) and ``moc`` list each
    imaging survey, in registry order.  With spectroscopic surveys in the
    registry, ``ssa`` (SSA 1.1) lists each of them, and ``soda`` and
    ``datalink`` list them after the imaging ones (their spectra's SODA and
    DataLink); the key is absent when there is none.
    """
    imaging = [s.collection for s in registry.of_kind("imaging")]
    spectroscopic = [s.collection for s in registry.of_kind("spectroscopy")]
    cones = {**_REFERENCE_CONES,
             **{f"{s.collection}.sources": f"{s.collection}/q/cone"
                for s in registry.with_sources()}}
    result = {
        "scs": {table: f"{path}/scs.xml" for table, path in cones.items()},
        "form": {**{table: f"{path}/form" for table, path in cones.items()},
                 **{f"{c}.images": f"{c}/q/sia1/form" for c in imaging}},
        "sia": {c: f"{c}/q/sia2/siap2.xml" for c in imaging},
        "sia1": {c: f"{c}/q/sia1/siap.xml" for c in imaging},
        "soda": {c: f"{c}/q/dl/dlget" for c in imaging},
        "datalink": {c: f"{c}/q/dl/dlmeta" for c in imaging},
        "pages": {f"{c}.{page}": f"{c}/q/{path}" for c in imaging for page, path in _PAGES},
        "hips": {f"{s.collection}.{b}": f"{HIPS_PATH}/{s.collection}/{b}"
                 for s in registry.of_kind("imaging") for b in s.hips_bands},
        "moc": {c: f"{MOC_PATH}/{c}.moc.fits" for c in imaging},
    }
    if spectroscopic:
        # the spectroscopic archives (resdir/common/spectra.rd): SSA 1.1, and
        # SODA (BAND, FORMAT) and DataLink on each spectrum
        result["ssa"] = {c: f"{c}/q/{SSA_PATH}" for c in spectroscopic}
        result["soda"].update({c: f"{c}/q/{SPECTRUM_DL_PATH}/dlget" for c in spectroscopic})
        result["datalink"].update(
            {c: f"{c}/q/{SPECTRUM_DL_PATH}/dlmeta" for c in spectroscopic})
        result["pages"].update(dict(_PORTAL_PAGES))
    return result


def hips_service_url(settings: Settings, collection: str, band: str) -> str:
    """``hips_service_url`` of a HiPS: its directory on this server (no trailing slash)."""
    return f"{settings.server_url.rstrip('/')}/{HIPS_PATH}/{collection}/{band}"


def endpoints(settings: Settings, registry: Registry | None = None) -> dict[str, Any]:
    """``{"base", "tap", "scs": {...}, ...}`` with absolute URLs.

    ``registry`` defaults to the surveys of ``settings`` (:func:`load_registry`).
    """
    base = settings.server_url.rstrip("/")
    result: dict[str, Any] = {
        "base": base + "/",
        "tap": base + "/tap",
        "examples": base + "/tap/examples",
        "tables": base + "/tap/tables",
        "hipslist": f"{base}/{HIPS_PATH}/hipslist",
    }
    for protocol, paths in services(registry or load_registry(settings)).items():
        result[protocol] = {name: f"{base}/{path}" for name, path in paths.items()}
    return result
