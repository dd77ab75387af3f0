# SPDX-License-Identifier: BSD-3-Clause
"""SODA cutouts: requests as plain data, fetched in parallel as a Dask graph.

- **Cutouts run as a Dask graph** of plain HTTP fetches (``dask.delayed`` +
  ``dask.compute``): threads by default (the work is waiting on the server, so
  more threads than cores pay), or the active ``distributed`` client when one is
  set as default, or whatever ``scheduler=`` names (``"synchronous"`` for serial,
  a ``distributed.Client``).  The task function :func:`fetch_cutout` imports only
  the standard library, numpy and astropy, so Dask workers of the compute
  environment, which has no pyvo, can run it; DataLink resolution
  (:mod:`casuvo.client.datalink`) stays on the client's side.
- **A failed cutout raises** :class:`CutoutError` by default, after all fetches
  have finished, naming every failed image (file, extension, publisher DID) with
  the service's message.  With ``on_error="warn"`` the failed slots are ``None``
  and one :class:`CutoutWarning` names them, so a grid of many cutouts still shows.
"""

from __future__ import annotations

import base64
import io
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Row
from astropy.wcs import WCS

from casuvo.client.datalink import SodaService
from casuvo.client.errors import CutoutError, CutoutWarning

if TYPE_CHECKING:
    import requests

__all__ = ["DEFAULT_SIZE", "Cutout", "CutoutRequest", "basic_auth", "cutout_label", "fetch_cutout",
           "fetch_cutouts", "row_values", "soda_requests"]

#: Full width of a cutout when none is given.
DEFAULT_SIZE = 30 * u.arcsec


@dataclass(frozen=True)
class Cutout:
    """A SODA cutout of one image: its pixels, its FITS header (with the WCS), what it is."""

    data: np.ndarray
    header: fits.Header
    did: str
    """Publisher DID of the image cut (``obs_publisher_did``)."""
    label: str
    """``filename[extnum]``: what error messages and plot titles call the image."""
    row: dict[str, Any] = field(default_factory=dict, repr=False)
    """The image's row of :meth:`Archive.query_radec` (plain values), if given one."""

    @property
    def wcs(self) -> WCS:
        """The cutout's celestial WCS (from its header; CRPIX shifted by the service)."""
        return WCS(self.header).celestial

    def to_hdu(self) -> fits.ImageHDU:
        """The cutout as an astropy image HDU, e.g. to write it to a file."""
        return fits.ImageHDU(data=self.data, header=self.header)


class CutoutRequest(NamedTuple):
    """One SODA sync request as plain data: what a Dask worker needs, nothing more."""

    url: str
    params: tuple[tuple[str, str], ...]
    did: str
    label: str
    timeout: float
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """How errors name the image: ``filename[extnum] (publisher DID)``."""
        return f"{self.label} ({self.did})" if self.label != self.did else self.did


class _Fetched(NamedTuple):
    data: np.ndarray | None
    header: fits.Header | None
    error: str | None


def fetch_cutout(request: CutoutRequest) -> _Fetched:
    """Run one SODA request and return the image pixels and header, or why it failed.

    Runs on Dask workers, so it uses only the standard library, numpy and astropy
    (the compute environment has neither pyvo nor requests) and returns failures
    as values: the client then names *every* failed image, not just the first.
    """
    url = request.url + "?" + urllib.parse.urlencode(request.params)
    req = urllib.request.Request(url, headers=dict(request.headers))
    try:
        with urllib.request.urlopen(req, timeout=request.timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace").strip()
        return _Fetched(None, None, f"HTTP {exc.code} from SODA: {text[:400] or exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        return _Fetched(None, None, f"SODA request failed: {exc}")
    try:
        with fits.open(io.BytesIO(body)) as hdul:
            for hdu in hdul:
                if hdu.data is not None and hdu.data.ndim == 2:
                    return _Fetched(np.array(hdu.data), hdu.header.copy(), None)
    except (OSError, ValueError) as exc:
        return _Fetched(None, None, f"SODA answer is not a FITS image: {exc}")
    return _Fetched(None, None, "SODA answer holds no 2-D image")


def row_values(row: Row | Mapping[str, Any]) -> dict[str, Any]:
    """A table row (or mapping) as plain Python values."""
    keys = row.colnames if isinstance(row, Row) else list(row.keys())
    out = {}
    for k in keys:
        v = row[k]
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def basic_auth(session: requests.Session | None, url: str | None = None
               ) -> tuple[tuple[str, str], ...]:
    """The session's HTTP basic credentials as a header, so SODA fetches carry them too.

    A session without its own credentials uses the user's netrc entry for ``url``'s
    host, as requests itself does (``NETRC`` or ``~/.netrc``).
    """
    auth = getattr(session, "auth", None)
    if auth is None and url and getattr(session, "trust_env", True):
        import requests.utils

        auth = requests.utils.get_netrc_auth(url)
    if isinstance(auth, tuple) and len(auth) == 2:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        return (("Authorization", f"Basic {token}"),)
    return ()


def cutout_label(values: Mapping[str, Any], did: str) -> str:
    """``filename[extnum]`` when the row has them, else the DID."""
    name = values.get("filename")
    if not name:
        return did
    ext = values.get("extnum")
    return f"{name}[{ext}]" if ext is not None else str(name)


def soda_requests(plain: Sequence[Mapping[str, Any]], ids: Sequence[str],
                  soda: Mapping[str, SodaService], ras: np.ndarray, decs: np.ndarray,
                  half: float, *, timeout: float, headers: tuple[tuple[str, str], ...]
                  ) -> list[CutoutRequest | tuple[str, str]]:
    """The SODA request of each row, or (image, why there is none), in row order.

    SODA gets ``CIRCLE ra dec half``, whose bounding box is what the service
    cuts: a square ``2 half`` wide, cropped at the image edges.
    """
    from pyvo.dal.adhoc import SodaQuery

    out: list[CutoutRequest | tuple[str, str]] = []
    for i, (values, did) in enumerate(zip(plain, ids, strict=True)):
        label = cutout_label(values, did)
        found = soda.get(did, "DataLink names no SODA cutout service for it")
        if isinstance(found, str):
            out.append((f"{label} ({did})", found))
            continue
        record, svc = found
        query = SodaQuery.from_resource(
            record, svc, circle=(float(ras[i]), float(decs[i]), half))
        params = tuple((k, str(v)) for k, v in query.items())
        out.append(CutoutRequest(query.baseurl, params, did, label, timeout, headers))
    return out


def fetch_cutouts(reqs: Sequence[CutoutRequest | tuple[str, str]],
                  plain: Sequence[dict[str, Any]], *, scheduler: Any = None,
                  num_workers: int = 8, on_error: Literal["raise", "warn"] = "raise"
                  ) -> list[Cutout | None]:
    """Fetch the requests in parallel (a Dask graph), in row order; failures as documented.

    ``reqs`` and ``plain`` are :func:`soda_requests`'s requests and the rows'
    values; an entry that is not a request is a failure already known.
    """
    import dask

    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error must be 'raise' or 'warn', not {on_error!r}")
    tasks = [dask.delayed(fetch_cutout, pure=True)(r) for r in reqs
             if isinstance(r, CutoutRequest)]
    if scheduler is None and dask.config.get("scheduler", None) is None:
        scheduler = "threads"
    kwargs = {"num_workers": num_workers} if scheduler == "threads" else {}
    fetched = iter(dask.compute(*tasks, scheduler=scheduler, **kwargs) if tasks else ())

    out: list[Cutout | None] = []
    failures: dict[str, str] = {}
    for req, values in zip(reqs, plain, strict=True):
        if not isinstance(req, CutoutRequest):
            failures[req[0]] = req[1]
            out.append(None)
            continue
        got = next(fetched)
        if got.error is not None or got.data is None or got.header is None:
            failures[req.name] = got.error or "no data"
            out.append(None)
            continue
        out.append(Cutout(got.data, got.header, req.did, req.label, values))
    if failures:
        if on_error == "raise":
            raise CutoutError(failures)
        warnings.warn(str(CutoutError(failures)), CutoutWarning, stacklevel=3)
    return out
