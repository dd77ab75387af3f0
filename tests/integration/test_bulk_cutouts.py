# SPDX-License-Identifier: BSD-3-Clause
"""Bulk cutouts as one UWS job (``cutouts/q/bulk/async``) against the synchronous SODA service.

200 cutouts of one job must equal the same 200 made one by one through SODA
(pixels, NaN included, and every header card, hence the WCS); progress must
be readable while the job executes; bad input must end the job in ERROR with
a message naming the problem (never a 500); an anonymous job must not cut a
proprietary image, which a team member's job does.  Positions come from the
product files' own WCS; which images hold a position comes from ObsCore
through TAP, not from the job's own query.
"""

from __future__ import annotations

import csv
import io
import json
import random
import tarfile
import time
import urllib.parse
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date

import numpy as np
import psycopg
import pytest
import pyvo
import requests
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from casuvo.client import Archive
from casuvo.config import Settings

pytestmark = pytest.mark.integration

warnings.filterwarnings("ignore", category=FITSFixedWarning)

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
N = 200


@pytest.fixture(scope="module")
def service(endpoints: dict) -> str:
    return endpoints["base"] + "cutouts/q/bulk/async"


def _images(settings: Settings, where: str = "TRUE") -> list[tuple[str, str, str, int]]:
    """(collection, did, product path, extension) of the images, in a fixed order."""
    out = []
    with psycopg.connect(settings.dsn) as conn:
        for collection in ("vista", "vst"):
            rows = conn.execute(
                f"SELECT obs_publisher_did, accref FROM {collection}.images WHERE {where}"
                " ORDER BY accref").fetchall()
            for did, accref in rows:
                rel, ext = accref.rsplit("/", 1)
                out.append((collection, did, str(settings.data_dir / rel), int(ext)))
    return out


def _inside(path: str, ext: int, rng: random.Random, margin: float = 0.0
            ) -> tuple[float, float]:
    """A position on the image (its own WCS); ``margin``: fraction kept from the edges."""
    header = fits.getheader(path, ext)
    nx, ny = header["NAXIS1"], header["NAXIS2"]
    px = rng.uniform(margin * nx, (1 - margin) * nx - 1)
    py = rng.uniform(margin * ny, (1 - margin) * ny - 1)
    ra, dec = WCS(header).all_pix2world(px, py, 0)
    return float(ra) % 360, float(dec)


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


class Job:
    """One job driven with plain HTTP (the UWS 1.1 REST binding)."""

    def __init__(self, session: requests.Session, service: str, table: bytes,
                 **params: str) -> None:
        self.session = session
        r = session.post(service, data=params, files={"positions": ("t.csv", table)},
                         allow_redirects=False, timeout=60)
        assert r.status_code == 303, (r.status_code, r.text[:300])
        self.url = urllib.parse.urljoin(service, r.headers["Location"])

    def run(self) -> Job:
        r = self.session.post(self.url + "/phase", data={"PHASE": "RUN"},
                              allow_redirects=False, timeout=60)
        assert r.status_code == 303, (r.status_code, r.text[:300])
        return self

    def doc(self) -> ET.Element:
        r = self.session.get(self.url, timeout=60)
        assert r.status_code == 200, r.text[:300]
        return ET.fromstring(r.content)

    def phase(self) -> str:
        return self.doc().findtext(f"{UWS}phase") or ""

    def polls(self, limit: float = 300) -> Iterator[str]:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            phase = self.phase()
            yield phase
            if phase in ("COMPLETED", "ERROR", "ABORTED"):
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.url} still not finished after {limit} s")

    def wait(self) -> ET.Element:
        for _ in self.polls():
            pass
        return self.doc()

    def result(self, name: str) -> bytes:
        r = self.session.get(f"{self.url}/results/{name}", timeout=60)
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        return r.content

    def index(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.result("index.csv").decode())))

    def index_missing(self) -> bool:
        """True when the job made no index (nothing was cut)."""
        r = self.session.get(f"{self.url}/results/index.csv", timeout=60)
        return r.status_code >= 400

    def delete(self) -> None:
        self.session.post(self.url, data={"ACTION": "DELETE"}, allow_redirects=False,
                          timeout=60)


def _fits(body: bytes) -> tuple[np.ndarray, fits.Header]:
    with fits.open(io.BytesIO(body), checksum=True) as hdul:
        assert len(hdul) == 2
        return np.array(hdul[1].data), hdul[1].header.copy()


def test_200_cutouts_equal_sodas_one_by_one(service: str, endpoints: dict,
                                            settings: Settings) -> None:
    rng = random.Random(17)
    images = _images(settings)
    rows, expect = [], []
    for i in range(N):
        collection, did, path, ext = images[rng.randrange(len(images))]
        # some near the edges: the service crops those
        ra, dec = _inside(path, ext, rng, margin=0.0 if i % 5 == 0 else 0.1)
        size = rng.choice([10, 24, 45, 72]) / 3600
        rows.append({"ra": repr(ra), "dec": repr(dec), "size": repr(size),
                     "obs_publisher_did": did})
        expect.append((collection, did, ra, dec, size))
    session = requests.Session()
    job = Job(session, service, _csv(rows)).run()
    seen = []
    for phase in job.polls():
        if phase == "EXECUTING":
            names = {r.get("id") for r in job.doc().iter(f"{UWS}result")}
            if "progress" in names:
                seen.append(json.loads(job.result("progress")))
    doc = job.doc()
    assert doc.findtext(f"{UWS}phase") == "COMPLETED", ET.tostring(doc)[:1000]
    # progress was readable while executing, never went back, and ended at the total
    assert seen, "no progress observed while the job executed"
    assert all(p["total"] == N for p in seen)
    done = [p["done"] for p in seen]
    assert done == sorted(done) and 0 <= done[0] <= N
    final = json.loads(job.result("progress"))
    assert final["done"] == final["total"] == N

    index = job.index()
    assert [int(line["row"]) for line in index] == list(range(N))
    assert all(not line["error"] for line in index)
    results = {r.get("id"): r for r in doc.iter(f"{UWS}result")}
    with tarfile.open(fileobj=io.BytesIO(job.result("cutouts.tar"))) as tar:
        packed = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert set(packed) == {line["file"] for line in index} | {"index.csv"}
    assert {line["file"] for line in index} <= set(results)
    soda = requests.Session()
    for line, (collection, did, ra, dec, size) in zip(index, expect, strict=True):
        assert line["obs_publisher_did"] == did and line["collection"] == collection
        r = soda.get(endpoints["soda"][collection],
                     params={"ID": did, "CIRCLE": f"{ra!r} {dec!r} {size / 2!r}"}, timeout=60)
        assert r.status_code == 200, r.text[:300]
        body = packed[line["file"]]
        if int(line["row"]) % 50 == 0:     # each file is also a result of its own
            assert job.result(line["file"]) == body
        data, header = _fits(body)
        soda_data, soda_header = _fits(r.content)
        np.testing.assert_array_equal(data, soda_data)            # NaN where SODA has NaN
        assert header.tostring() == soda_header.tostring()        # WCS and every other card
        wcs = WCS(header).to_header(relax=True)
        soda_wcs = WCS(soda_header).to_header(relax=True)
        assert "CRPIX1" in wcs and dict(wcs) == dict(soda_wcs)
        assert (int(line["naxis1"]), int(line["naxis2"])) == soda_data.shape[::-1]
        assert body == r.content
    job.delete()


def _tap_images(endpoints: dict, ra: float, dec: float, session: requests.Session
                ) -> set[str]:
    """The image DIDs whose footprint holds the position, by TAP (what the session sees)."""
    tap = pyvo.dal.TAPService(endpoints["tap"], session=session)
    out = set()
    for collection in ("vista", "vst"):
        result = tap.run_sync(
            f"SELECT obs_publisher_did FROM {collection}.images"
            f" WHERE 1 = CONTAINS(POINT('ICRS', {ra!r}, {dec!r}), coverage)")
        out |= {str(v) for v in result["obs_publisher_did"]}
    return out


def test_anonymous_job_cuts_no_proprietary_image(service: str, endpoints: dict,
                                                  settings: Settings) -> None:
    rng = random.Random(3)
    hidden = _images(settings, f"release_date > '{date.today().isoformat()}'")
    assert hidden, "the demo has proprietary images"
    picks = [hidden[rng.randrange(len(hidden))] for _ in range(4)]
    positions = [_inside(path, ext, rng, margin=0.2) for _, _, path, ext in picks]
    table = _csv([{"ra": repr(ra), "dec": repr(dec), "size": "0.005"}
                  for ra, dec in positions])
    anonymous, member = requests.Session(), requests.Session()
    anonymous.auth = None
    jobs = {who: Job(s, service, table).run() for who, s in
            (("anonymous", anonymous), ("member", member))}
    cut = {}
    for who, job in jobs.items():
        assert job.wait().findtext(f"{UWS}phase") == "COMPLETED"
        cut[who] = {(int(line["row"]), line["obs_publisher_did"]) for line in job.index()}
        job.delete()
    for who, session in (("anonymous", anonymous), ("member", member)):
        expected = {(row, did) for row, (ra, dec) in enumerate(positions)
                    for did in _tap_images(endpoints, ra, dec, session)}
        assert cut[who] == expected, who
    hidden_dids = {did for _, did, _, _ in picks}
    assert hidden_dids <= {did for _, did in cut["member"]}
    assert not hidden_dids & {did for _, did in cut["anonymous"]}

    # naming the image does not help
    job = Job(anonymous, service, _csv([{"ra": repr(ra), "dec": repr(dec), "size": "0.005",
                                         "obs_publisher_did": did}
                                        for (ra, dec), (_, did, _, _) in
                                        zip(positions, picks, strict=True)])).run()
    assert job.wait().findtext(f"{UWS}phase") == "COMPLETED"
    assert job.index() == []
    job.delete()


#: (upload, parameters, what the job's error message must say)
BAD_INPUT = [
    (b"ra,dec,size\n10,95,0.01\n", {}, "row 0: dec must be in [-90, 90]"),
    (b"ra,dec,size\n10,5,0\n", {}, "row 0: size must be in (0, 0.25]"),
    (b"ra,dec,size\n10,5,0.01\n", {"COLLECTION": "nosuch"}, "'nosuch' is not an image collection"),
    (b"<VOTABLE><RESOURCE>", {}, "not a readable VOTable table"),
    (b"ra,dec\n", {}, "the table has no rows"),
    (b"ra,dec\n" + b"1,2\n" * 10_001, {}, "more than the 10000 a job takes"),
    (None, {}, "more than the 2000 cutouts"),
]


def test_bad_input_ends_in_error(service: str, settings: Settings) -> None:
    """Each bad upload: created (303), run, ERROR with the message; all jobs at once."""
    _, did, path, ext = _images(settings)[0]
    ra, dec = _inside(path, ext, random.Random(1), margin=0.3)
    too_many = ("ra,dec,size,obs_publisher_did\n"
                + f"{ra!r},{dec!r},0.001,{did}\n" * 2001).encode()
    session = requests.Session()
    jobs = [(Job(session, service, table or too_many, **params).run(), message)
            for table, params, message in BAD_INPUT]
    for job, message in jobs:
        doc = job.wait()
        assert doc.findtext(f"{UWS}phase") == "ERROR", message
        text = doc.findtext(f"{UWS}errorSummary/{UWS}message") or ""
        assert message in text, (message, text)
        error = session.get(job.url + "/error", timeout=60)
        assert error.status_code == 200 and message in error.text
        assert job.index_missing()
        job.delete()


def test_client_switches_to_the_job(endpoints: dict, settings: Settings) -> None:
    rng = random.Random(9)
    images = [i for i in _images(settings) if i[0] == "vst"]
    archive = Archive("vst", endpoints["base"], session=requests.Session())
    picks = [images[rng.randrange(len(images))] for _ in range(24)]
    dids = [did for _, did, _, _ in picks]
    rows = [{"obs_publisher_did": did, "filename": path.rsplit("/", 1)[-1], "extnum": ext}
            for _, did, path, ext in picks]
    positions = [_inside(path, ext, rng, margin=0.1) for _, _, path, ext in picks]
    ras, decs = [p[0] for p in positions], [p[1] for p in positions]
    by_job = archive.cutouts(rows, ras, decs, size=20 / 3600, bulk=True)
    one_by_one = archive.cutouts(rows, ras, decs, size=20 / 3600, bulk=False)
    for a, b, did in zip(by_job, one_by_one, dids, strict=True):
        assert a is not None and b is not None and a.did == b.did == did
        assert a.label == b.label
        np.testing.assert_array_equal(a.data, b.data)
        assert a.header.tostring() == b.header.tostring()


def test_abort_stops_the_cutting(service: str, settings: Settings) -> None:
    """PHASE=ABORT while cutting: ABORTED, and the compute side stops (progress stands)."""
    _, did, path, ext = next(i for i in _images(settings, "imagetype = 'tile'")
                             if i[0] == "vst")
    ra, dec = _inside(path, ext, random.Random(2), margin=0.4)
    table = ("ra,dec,size,obs_publisher_did\n"
             + f"{ra!r},{dec!r},0.02,{did}\n" * 2000).encode()
    job = Job(requests.Session(), service, table).run()
    for phase in job.polls():
        if phase == "EXECUTING" and any(
                r.get("id") == "progress" for r in job.doc().iter(f"{UWS}result")):
            break
    r = job.session.post(job.url + "/phase", data={"PHASE": "ABORT"}, allow_redirects=False,
                         timeout=60)
    assert r.status_code == 303
    assert job.wait().findtext(f"{UWS}phase") == "ABORTED"
    done = json.loads(job.result("progress"))
    assert done["total"] == 2000 and done["done"] < 2000
    time.sleep(1.5)
    assert json.loads(job.result("progress")) == done
    job.delete()
