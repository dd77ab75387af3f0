# SPDX-License-Identifier: BSD-3-Clause
"""A notebook client for casuvo's image archives: find images around a position, cut them out.

This is the ``VISTADB().query_radec`` client of the CASU talk, rebuilt on the
IVOA standards so that it works against any casuvo instance (and, for the
most part, any DaCHS image archive) without knowing its service paths::

    from casuvo.client import Archive

    vista = Archive("vista")                      # base URL from CASUVO_* settings
    images = vista.query_radec(194.30, -64.75)    # astropy Table, one row per image
    cutouts = vista.cutouts(images[:12], 194.30, -64.75, size=30 * u.arcsec)

How it finds the services:

- TAP is at ``<base>/tap`` (DaCHS's fixed location, as in every casuvo instance);
  :meth:`Archive.query_radec` runs ADQL on ``<archive>.images`` there.
- The TAP result carries a DataLink service descriptor (an ``adhoc:service``
  RESOURCE with ``standardID`` DataLink); :meth:`Archive.cutouts` asks that service
  for the DataLink documents of the chosen images (one batched request) and takes
  from each its SODA sync service descriptor (``#cutout``, ``standardID``
  ``ivo://ivoa.net/std/SODA#sync-1.0``).  No SODA or DataLink path is written here.

Choices, and why:

- **astropy Table, not pandas.**  The service environment (DaCHS's numpy 1.26)
  has no pandas; ``Table.to_pandas()`` is there for those who install it.  A
  Table keeps the units and descriptions the service declares.
- **Cutouts run as a Dask graph** of plain HTTP fetches (``dask.delayed`` +
  ``dask.compute``): threads by default (the work is waiting on the server, so
  more threads than cores pay), or the active ``distributed`` client when one is
  set as default, or whatever ``scheduler=`` names (``"synchronous"`` for serial,
  a ``distributed.Client``).  The task function imports only the standard
  library, numpy and astropy, so Dask workers of the compute environment, which
  has no pyvo, can run it; DataLink resolution stays on the client's side.
- **A failed cutout raises** :class:`CutoutError` by default, after all fetches
  have finished, naming every failed image (file, extension, publisher DID) with
  the service's message.  With ``on_error="warn"`` the failed slots are ``None``
  and one :class:`CutoutWarning` names them, so a grid of many cutouts still shows.
"""

from __future__ import annotations

import base64
import io
import math
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Row, Table
from astropy.wcs import WCS

if TYPE_CHECKING:
    import pyvo
    import requests
    from astropy.io.votable.tree import Resource

    from casuvo.config import Settings

__all__ = [
    "DEFAULT_COLUMNS",
    "DEFAULT_RADIUS",
    "DEFAULT_SIZE",
    "IMAGE_TYPES",
    "KNOWN_ARCHIVES",
    "Archive",
    "ArchiveError",
    "Cutout",
    "CutoutError",
    "CutoutWarning",
]

#: The image archives of a casuvo instance (TAP schema of their ``images`` table).
KNOWN_ARCHIVES: tuple[str, ...] = ("vista", "vst")
#: Values of ``images.imagetype``.
IMAGE_TYPES: tuple[str, ...] = ("pawprint", "tile")
#: Cone radius of :meth:`Archive.query_radec` when none is given.
DEFAULT_RADIUS = 1 * u.arcmin
#: Full width of a cutout when none is given.
DEFAULT_SIZE = 30 * u.arcsec
#: Columns :meth:`Archive.query_radec` returns: the talk's notebook columns first
#: (filename ... qcstatus), then what identifies an image and what cutouts need.
DEFAULT_COLUMNS: tuple[str, ...] = (
    "filename", "coords", "filtername", "surveyname", "nightobs", "totexptime",
    "obsfwhm", "obstatus", "qcstatus",
    "extnum", "extname", "imagetype", "object", "mjdobs", "ellipticity", "magzpt",
    "abmaglim", "centerAlpha", "centerDelta", "obs_publisher_did",
)

_DATALINK_IVOID = "ivo://ivoa.net/std/datalink#links-1.0"
_SODA_SYNC_IVOID = "ivo://ivoa.net/std/soda#sync-1.0"
_ID_COLUMN = "obs_publisher_did"
#: IDs per DataLink request (DataLink 1.1 allows many; keep POST bodies modest).
_DATALINK_BATCH = 200
#: Links asked for per image in one DataLink request (a tile has ~12; DaCHS crops at MAXREC).
_DATALINK_MAXREC_PER_ID = 100


class ArchiveError(RuntimeError):
    """The archive's services failed or refused a request; the message says which and why.

    Bad arguments (a declination beyond ±90°, a negative size, an unknown
    archive) raise :class:`ValueError` before any request is made; this is for
    what only the server can tell (unreachable, a TAP error document, no
    DataLink service).
    """


class CutoutError(ArchiveError):
    """One or more cutouts failed; :attr:`failures` maps each image's label to why."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        lines = "\n".join(f"  {label}: {why}" for label, why in self.failures.items())
        super().__init__(f"{len(self.failures)} cutout(s) failed:\n{lines}")


class CutoutWarning(UserWarning):
    """Cutouts failed and were returned as ``None`` (``on_error="warn"``)."""


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


def _degrees(value: float | u.Quantity, name: str) -> float:
    """An angle in degrees from a number (degrees) or an angular Quantity."""
    if isinstance(value, u.Quantity):
        try:
            value = value.to_value(u.deg)
        except u.UnitConversionError:
            raise ValueError(f"{name} must be an angle, not {value.unit}") from None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of degrees or an angle") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, not {out}")
    return out


def _position(ra: float | u.Quantity, dec: float | u.Quantity) -> tuple[float, float]:
    ra_deg, dec_deg = _degrees(ra, "ra") % 360.0, _degrees(dec, "dec")
    if not -90.0 <= dec_deg <= 90.0:
        raise ValueError(f"dec must lie in [-90, 90] degrees, not {dec_deg}")
    return ra_deg, dec_deg


def _adql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _plain(table: Table) -> Table:
    """Unmask columns that have nothing masked: cleaner display and arithmetic."""
    for name in table.colnames:
        col = table[name]
        if isinstance(col, MaskedColumn) and not np.any(col.mask):
            table[name] = Column(col.data.data, name=name, unit=col.unit,
                                 description=col.description, meta=col.meta)
    return table


def _row_values(row: Row | Mapping[str, Any]) -> dict[str, Any]:
    keys = row.colnames if isinstance(row, Row) else list(row.keys())
    out = {}
    for k in keys:
        v = row[k]
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def _basic_auth(session: requests.Session | None) -> tuple[tuple[str, str], ...]:
    """The session's HTTP basic credentials as a header, so SODA fetches carry them too."""
    auth = getattr(session, "auth", None)
    if isinstance(auth, tuple) and len(auth) == 2:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        return (("Authorization", f"Basic {token}"),)
    return ()


class Archive:
    """One casuvo image archive (``"vista"`` or ``"vst"``) at a server's base URL.

    Parameters
    ----------
    name:
        The archive: one of :data:`KNOWN_ARCHIVES`.
    base_url:
        The server root (e.g. ``http://localhost:8080``); by default the
        ``server_url`` of ``settings`` or of :meth:`Settings.from_env`.
    settings:
        casuvo settings to take the default base URL from.
    session:
        A ``requests`` session for TAP and DataLink (e.g. with credentials for
        proprietary data: its basic-auth credentials go with the SODA fetches too).
    timeout:
        Seconds to wait for one SODA cutout.
    """

    def __init__(self, name: str, base_url: str | None = None, *,
                 settings: Settings | None = None,
                 session: requests.Session | None = None, timeout: float = 60.0) -> None:
        if name not in KNOWN_ARCHIVES:
            raise ValueError(
                f"unknown archive {name!r}: known archives are {', '.join(KNOWN_ARCHIVES)}")
        if base_url is None:
            from casuvo.config import Settings

            base_url = (settings or Settings.from_env()).server_url
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self._session = session
        self._tap: pyvo.dal.TAPService | None = None
        self._datalink: tuple[Resource, str] | None = None

    def __repr__(self) -> str:
        return f"Archive({self.name!r}, {self.base_url!r})"

    @property
    def tap_url(self) -> str:
        """The TAP service: DaCHS's fixed ``<base>/tap``."""
        return self.base_url + "/tap"

    @property
    def table(self) -> str:
        """The archive's image table (one row per image) in TAP."""
        return f"{self.name}.images"

    @property
    def tap(self) -> pyvo.dal.TAPService:
        if self._tap is None:
            import pyvo

            self._tap = pyvo.dal.TAPService(self.tap_url, session=self._session)
        return self._tap

    # -- finding images ---------------------------------------------------------------

    def query_radec(self, ra: float | u.Quantity, dec: float | u.Quantity,
                    radius: float | u.Quantity = DEFAULT_RADIUS, *,
                    band: str | Sequence[str] | None = None,
                    imagetype: str | None = None,
                    columns: Sequence[str] = DEFAULT_COLUMNS,
                    maxrec: int = 100_000) -> Table:
        """The images whose footprint overlaps the circle ``radius`` around (ra, dec).

        ``ra``, ``dec`` and ``radius`` are degrees (ICRS) or angular Quantities.
        A small radius (say 0.1″) gives the images that contain the position.
        ``band`` keeps one filter or several (``filtername``, e.g. ``"Ks"``);
        ``imagetype`` keeps ``"pawprint"`` (one detector of a stacked pawprint) or
        ``"tile"``.  Rows come sorted by night, file name and extension, so the
        same query gives the same table; no image is an empty table, not an error.
        """
        ra_deg, dec_deg = _position(ra, dec)
        r_deg = _degrees(radius, "radius")
        if not 0.0 < r_deg <= 180.0:
            raise ValueError(f"radius must be > 0 and ≤ 180 degrees, not {r_deg}")
        cols = list(dict.fromkeys([*columns, _ID_COLUMN]))
        where = [f"1 = INTERSECTS(coverage, CIRCLE('ICRS', {ra_deg!r}, {dec_deg!r}, "
                 f"{r_deg!r}))"]
        if band is not None:
            bands = [band] if isinstance(band, str) else list(band)
            if not bands:
                raise ValueError("band must name at least one filter")
            where.append(f"filtername IN ({', '.join(_adql_string(b) for b in bands)})")
        if imagetype is not None:
            if imagetype not in IMAGE_TYPES:
                raise ValueError(f"imagetype must be one of {', '.join(IMAGE_TYPES)}, "
                                 f"not {imagetype!r}")
            where.append(f"imagetype = {_adql_string(imagetype)}")
        adql = (f"SELECT {', '.join(cols)} FROM {self.table} WHERE {' AND '.join(where)} "
                "ORDER BY nightobs, filename, extnum")
        result = self._run_tap(adql, maxrec=maxrec)
        self._remember_datalink(result)
        table = _plain(result.to_table())
        table.meta.update({"archive": self.name, "base_url": self.base_url,
                           "ra": ra_deg, "dec": dec_deg, "radius": r_deg})
        return table

    def _run_tap(self, adql: str, maxrec: int | None = None) -> pyvo.dal.TAPResults:
        """A sync TAP query; what goes wrong on the server's side becomes an ArchiveError."""
        import requests
        from pyvo.dal import DALAccessError

        try:
            return self.tap.run_sync(adql, maxrec=maxrec)
        except (DALAccessError, requests.RequestException) as exc:
            raise ArchiveError(
                f"TAP query on {self.table} at {self.tap_url} failed: {exc}") from exc

    def _remember_datalink(self, result: pyvo.dal.DALResults) -> None:
        """Keep the TAP result's DataLink service descriptor and the column it takes IDs from."""
        from pyvo.dal import DALServiceError

        try:
            resource = result.get_adhocservice_by_ivoid(_DATALINK_IVOID)
        except DALServiceError:
            return
        ref = _id_param_ref(resource)
        if ref is None:
            return
        names = {f.ID: f.name for f in result.votable.get_first_table().fields}
        self._datalink = (resource, names.get(ref, ref))

    def _datalink_service(self) -> tuple[Resource, str]:
        """The DataLink descriptor, from the last query or a one-row TAP query."""
        if self._datalink is None:
            self._remember_datalink(self._run_tap(
                f"SELECT TOP 1 {_ID_COLUMN} FROM {self.table}"))
        if self._datalink is None:
            raise ArchiveError(
                f"{self.tap_url} declares no DataLink service for {self.table}: "
                "no cutouts without one")
        return self._datalink

    # -- cutouts -------------------------------------------------------------------------

    def cutout_requests(self, rows: Table | Row | Iterable[Mapping[str, Any]],
                        ra: float | u.Quantity | Sequence[float],
                        dec: float | u.Quantity | Sequence[float],
                        size: float | u.Quantity = DEFAULT_SIZE,
                        ) -> tuple[list[CutoutRequest | tuple[str, str]], list[dict[str, Any]]]:
        """The SODA request, or (image, why there is none), for each row, via DataLink.

        ``ra``/``dec`` are one position for all rows or one per row.  SODA gets
        ``CIRCLE ra dec size/2``, whose bounding box is what the service cuts: a
        square about ``size`` wide, cropped at the image edges.
        """
        import requests
        from pyvo.dal import DALAccessError
        from pyvo.dal.adhoc import DatalinkQuery, SodaQuery

        row_list = [rows] if isinstance(rows, Row) else list(rows)
        plain = [_row_values(r) for r in row_list]
        n = len(plain)
        ras = _per_row(_angles(ra, "ra"), n, "ra")
        decs = _per_row(_angles(dec, "dec"), n, "dec")
        half = _degrees(size, "size") / 2.0
        if not 0.0 < half <= 90.0:
            raise ValueError(f"size must be > 0 and ≤ 180 degrees, not {2 * half}")
        if not n:
            return [], []
        resource, id_column = self._datalink_service()
        ref = _id_param_ref(resource) or id_column
        for values in plain:
            if id_column not in values:
                raise ValueError(f"rows need the {id_column!r} column (Archive.query_radec "
                                 "returns it) to find their cutout service")
        ids = [str(v[id_column]) for v in plain]

        # DataLink documents of all rows: batched requests, as DataLink 1.1 allows.
        soda: dict[str, tuple[Any, Any] | str] = {}
        remaining = list(dict.fromkeys(ids))
        while remaining:
            batch, remaining = remaining[:_DATALINK_BATCH], remaining[_DATALINK_BATCH:]
            query = DatalinkQuery.from_resource([{ref: i} for i in batch],
                                                resource, session=self._session)
            # DaCHS crops a DataLink document at the service's default MAXREC (100 links,
            # about 15 images' worth), dropping the #cutout rows that come last.
            query["MAXREC"] = str(_DATALINK_MAXREC_PER_ID * len(batch))
            with warnings.catch_warnings():
                # DaCHS's service descriptors give array PARAMs an empty value,
                # which astropy flags (E02); nothing a user of the client can act on.
                from astropy.io.votable.exceptions import VOWarning

                warnings.simplefilter("ignore", VOWarning)
                try:
                    links = query.execute(post=True)
                except (DALAccessError, requests.RequestException) as exc:
                    raise ArchiveError(
                        f"DataLink request to {query.baseurl} failed: {exc}") from exc
            for record in links:
                rid = record.id
                if rid in soda and not isinstance(soda[rid], str):
                    continue
                if record.error_message:
                    soda.setdefault(rid, f"DataLink: {record.error_message}")
                    continue
                if not record.service_def:
                    continue
                svc = links.get_adhocservice_by_id(record.service_def)
                std = {str(p.value).lower() for p in svc.params if p.name == "standardID"}
                if _SODA_SYNC_IVOID in std:
                    soda[rid] = (record, svc)

        auth = _basic_auth(self._session)
        requests_: list[CutoutRequest | tuple[str, str]] = []
        for i, (values, did) in enumerate(zip(plain, ids, strict=True)):
            label = _label(values, did)
            found = soda.get(did, "DataLink names no SODA cutout service for it")
            if isinstance(found, str):
                requests_.append((f"{label} ({did})", found))
                continue
            record, svc = found
            query = SodaQuery.from_resource(
                record, svc, circle=(float(ras[i]), float(decs[i]), half))
            params = tuple((k, str(v)) for k, v in query.items())
            requests_.append(CutoutRequest(query.baseurl, params, did, label, self.timeout,
                                           auth))
        return requests_, plain

    def cutouts(self, rows: Table | Row | Iterable[Mapping[str, Any]],
                ra: float | u.Quantity | Sequence[float],
                dec: float | u.Quantity | Sequence[float],
                size: float | u.Quantity = DEFAULT_SIZE, *,
                scheduler: Any = None, num_workers: int = 8,
                on_error: Literal["raise", "warn"] = "raise") -> list[Cutout | None]:
        """SODA cutouts of ``rows`` around (ra, dec), fetched in parallel, in row order.

        ``rows`` is (a slice of) the table :meth:`query_radec` returns, or rows of
        it.  ``size`` is the cutout's full width (degrees or an angle); the
        service crops it at the image's edges.  ``ra``/``dec`` may also give one
        position per row.

        ``scheduler`` goes to ``dask.compute``: by default the active
        ``distributed`` client if one is the default, otherwise ``num_workers``
        threads; ``"synchronous"`` fetches one after the other; a
        ``distributed.Client`` runs the fetches on its workers.  A failed cutout
        raises :class:`CutoutError` naming every failed image (``on_error="raise"``)
        or becomes ``None`` with one :class:`CutoutWarning` (``on_error="warn"``).
        """
        import dask

        if on_error not in ("raise", "warn"):
            raise ValueError(f"on_error must be 'raise' or 'warn', not {on_error!r}")
        reqs, plain = self.cutout_requests(rows, ra, dec, size)
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
            warnings.warn(str(CutoutError(failures)), CutoutWarning, stacklevel=2)
        return out


def _id_param_ref(resource: Resource) -> str | None:
    """The FIELD a DataLink service descriptor takes its ``ID`` input from (DataLink 1.1 §4)."""
    for group in resource.groups:
        if group.name != "inputParams":
            continue
        for param in group.entries:
            if param.name == "ID" and getattr(param, "ref", None):
                return str(param.ref)
    return None


def _angles(value: float | u.Quantity | Sequence[float], name: str) -> np.ndarray:
    """Degrees from a number, a sequence of numbers or an angular Quantity (array)."""
    if isinstance(value, u.Quantity):
        try:
            arr = np.asarray(value.to_value(u.deg), dtype=float)
        except u.UnitConversionError:
            raise ValueError(f"{name} must be an angle, not {value.unit}") from None
    else:
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be degrees or an angle") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if name == "dec" and np.any(np.abs(arr) > 90):
        raise ValueError("dec must lie in [-90, 90] degrees")
    return arr % 360.0 if name == "ra" else arr


def _per_row(values: np.ndarray, n: int, name: str) -> np.ndarray:
    """One value for all ``n`` rows, or one per row: anything else is a usage error."""
    flat = np.ravel(values)
    if flat.size == 1:
        return np.full(n, float(flat[0]))
    if flat.size != n:
        raise ValueError(f"{name} must be one value or one per row ({n}), not {flat.size}")
    return flat


def _label(values: Mapping[str, Any], did: str) -> str:
    """``filename[extnum]`` when the row has them, else the DID."""
    name = values.get("filename")
    if not name:
        return did
    ext = values.get("extnum")
    return f"{name}[{ext}]" if ext is not None else str(name)
