# SPDX-License-Identifier: BSD-3-Clause
"""Many cutouts through one bulk cutout job (UWS) instead of one SODA request each.

:meth:`casuvo.client.Archive.cutouts` comes here above
:data:`BULK_THRESHOLD` cutouts: a few hundred sync requests cost the server a
few hundred request cycles and the client as many round trips, while one job
uploads a table (``obs_publisher_did``, ``ra``, ``dec``, ``size`` per row),
cuts on the server's Dask cluster and comes back as one tar file.  The
cutouts are the synchronous service's, byte for byte (the job cuts with the
same code), and the return value is the same list of :class:`Cutout`; a row
the job could not cut is a failure named like a SODA failure.

The service is ``<base>/cutouts/q/bulk/async`` (a fixed location of every
casuvo server, as ``<base>/tap`` is DaCHS's): a UWS 1.1 job list.
"""

from __future__ import annotations

import csv
import io
import tarfile
import time
import urllib.parse
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from astropy.io import fits
from astropy.io.votable import from_table, writeto
from astropy.table import Table

from casuvo.client.cutouts import Cutout
from casuvo.client.errors import ArchiveError, CutoutError, CutoutWarning

if TYPE_CHECKING:
    import requests

__all__ = ["BULK_PATH", "BULK_THRESHOLD", "BulkJob", "bulk_cutouts"]

#: where every casuvo server has its bulk cutout service (under the base URL)
BULK_PATH = "cutouts/q/bulk/async"
#: :meth:`Archive.cutouts` uses a job above this many cutouts
BULK_THRESHOLD = 100

_UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
_FINAL = {"COMPLETED", "ERROR", "ABORTED"}


class BulkJob:
    """One bulk cutout job on the server: create, run, wait, fetch, delete."""

    def __init__(self, base_url: str, session: requests.Session, timeout: float) -> None:
        self.service = f"{base_url.rstrip('/')}/{BULK_PATH}"
        self.session = session
        self.timeout = timeout
        self.url: str | None = None

    def _check(self, response: requests.Response, what: str) -> requests.Response:
        if response.status_code >= 400:
            raise ArchiveError(f"{what} at {self.service}: HTTP {response.status_code}: "
                               f"{response.text[:400]}")
        return response

    def create(self, table: Table, collection: str | None = None) -> str:
        """POST the positions (a VOTable upload); returns the job's URL."""
        buf = io.BytesIO()
        writeto(from_table(table), buf)
        data = {"collection": collection} if collection else {}
        response = self._check(self.session.post(
            self.service, data=data, files={"positions": ("positions.xml", buf.getvalue(),
                                                          "application/x-votable+xml")},
            allow_redirects=False, timeout=self.timeout), "creating a bulk cutout job")
        location = response.headers.get("Location")
        if not location:
            raise ArchiveError(f"{self.service} made no job (HTTP {response.status_code})")
        self.url = urllib.parse.urljoin(self.service, location)
        return self.url

    def run(self) -> None:
        self._check(self.session.post(f"{self.url}/phase", data={"PHASE": "RUN"},
                                      allow_redirects=False, timeout=self.timeout),
                    "starting the bulk cutout job")

    def document(self) -> Any:
        """The job's UWS document (an ElementTree element)."""
        from xml.etree import ElementTree

        response = self._check(self.session.get(self.url, timeout=self.timeout),
                               "reading the bulk cutout job")
        return ElementTree.fromstring(response.content)

    def wait(self, limit: float) -> Any:
        """Poll until the job is COMPLETED, ERROR or ABORTED; returns its document."""
        deadline = time.monotonic() + limit
        pause = 0.2
        while True:
            doc = self.document()
            phase = doc.findtext(f"{_UWS}phase")
            if phase in _FINAL:
                return doc
            if time.monotonic() > deadline:
                raise ArchiveError(f"the bulk cutout job {self.url} is still {phase} after "
                                   f"{limit:.0f} s")
            time.sleep(pause)
            pause = min(pause * 1.5, 3.0)

    def result(self, name: str) -> bytes:
        return self._check(self.session.get(f"{self.url}/results/{name}",
                                             timeout=self.timeout),
                           f"fetching result {name}").content

    def delete(self) -> None:
        if self.url:
            self.session.post(self.url, data={"ACTION": "DELETE"}, allow_redirects=False,
                              timeout=self.timeout)


def _read_tar(body: bytes) -> tuple[list[dict[str, str]], dict[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()  # type: ignore[union-attr]
                 if m.isfile()}
    index = list(csv.DictReader(io.StringIO(files.pop("index.csv").decode("utf-8"))))
    return index, files


def bulk_cutouts(base_url: str, session: requests.Session | None, collection: str,
                 dids: Sequence[str], labels: Sequence[str], ras: np.ndarray,
                 decs: np.ndarray, size: float, plain: Sequence[dict[str, Any]], *,
                 timeout: float = 60.0, wait: float = 3600.0,
                 on_error: Literal["raise", "warn"] = "raise") -> list[Cutout | None]:
    """The cutouts of one image per row (``dids``) around (ras, decs), in row order, by job.

    ``size`` is the full width in degrees.  Failures as :func:`fetch_cutouts`'s:
    :class:`CutoutError` naming every failed image, or ``None`` slots and one
    :class:`CutoutWarning`.
    """
    import requests

    session = session or requests.Session()
    table = Table({"obs_publisher_did": [str(d) for d in dids],
                   "ra": np.asarray(ras, dtype=float), "dec": np.asarray(decs, dtype=float),
                   "size": np.full(len(dids), float(size))})
    job = BulkJob(base_url, session, timeout)
    job.create(table, collection)
    try:
        job.run()
        doc = job.wait(wait)
        phase = doc.findtext(f"{_UWS}phase")
        if phase != "COMPLETED":
            message = doc.findtext(f"{_UWS}errorSummary/{_UWS}message") or phase
            raise ArchiveError(f"the bulk cutout job {job.url} ended {phase}: {message}")
        index, files = _read_tar(job.result("cutouts.tar"))
    finally:
        job.delete()
    by_row: dict[int, Mapping[str, str]] = {int(line["row"]): line for line in index}
    out: list[Cutout | None] = []
    failures: dict[str, str] = {}
    for row, (did, label, values) in enumerate(zip(dids, labels, plain, strict=True)):
        name = f"{label} ({did})" if label != did else did
        line = by_row.get(row)
        if line is None:
            failures[name] = "no such image here, or not visible to you"
            out.append(None)
            continue
        if line["error"] or line["file"] not in files:
            failures[name] = line["error"] or "no cutout"
            out.append(None)
            continue
        with fits.open(io.BytesIO(files[line["file"]])) as hdul:
            hdu = next(h for h in hdul if h.data is not None and h.data.ndim == 2)
            out.append(Cutout(np.array(hdu.data), hdu.header.copy(), did, label, values))
    if failures:
        if on_error == "raise":
            raise CutoutError(failures)
        warnings.warn(str(CutoutError(failures)), CutoutWarning, stacklevel=3)
    return out
