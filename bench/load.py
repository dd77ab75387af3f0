# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: 16 concurrent clients, a mixed VO workload, every answer checked.

Each client (a thread with its own HTTP session, loopback only) draws
requests from a fixed mix for a bounded time: TAP sync (a small cone on
``gaia.sources``, and a COUNT over a larger one), TAP async (submit and run,
wait, fetch the result, delete the job), SCS, SIA 2.0, SIA 1.0, SODA cutouts
and DataLink documents, every service found through ``casuvo endpoints
--json`` (:func:`casuvo.archive.endpoints.endpoints`).  Every answer is
checked for its status *and* a value computed independently before the run:
the row count of a cone or an image search against the same predicate in
SQL (pgSphere, straight over psycopg), the COUNT against ``count(*)``, a
cutout's pixel shape against the circle's pixel bounds under the file's WCS,
a DataLink document's ``#this`` link against the image's access reference.
The clients ask anonymously, so the workload is the public's: the expected
values are computed as an anonymous request reads the tables (release
control, ``bench/public.py``), and the images cut and resolved are public
ones.

The baseline is the same mix sent by one client in the same run; printed:
errors (goal 0), p50/p95 per service at 1 and at 16 clients, and the
throughput.  ``--seconds`` bounds the 16-client phase (the baseline runs a
third of it); ``--json PATH`` writes the figures (``bench/report.py``).
``tests/integration/test_load.py`` runs a short version in ``make test``.
"""

from __future__ import annotations

import argparse
import io
import math
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import public  # bench/public.py, beside this script
import requests
from astropy.io import fits
from astropy.wcs import WCS

from casuvo.archive.endpoints import endpoints
from casuvo.config import Settings
from casuvo.simulate.fields import DEMO_FIELDS

CLIENTS = 16
#: cone radius of the TAP sync and SCS requests (a few dozen Gaia rows)
CONE_DEG = 30 / 3600
#: radius of the TAP COUNT (a few thousand rows counted in the database)
COUNT_DEG = 0.05
#: radius of the SIA position (a handful of images)
SIA_DEG = 0.01
#: radius of the SODA cutout circle
CUTOUT_DEG = 0.1 / 60
#: relative weight of each request kind in the mix; an async job costs a process
#: start on the server (``gavo taprun``), so it is drawn rarely
MIX: dict[str, float] = {"tap sync": 3, "tap count": 1, "tap async": 0.4, "scs": 3,
                         "sia2": 2, "sia1": 1, "soda": 2, "datalink": 2}
TIMEOUT = 120
_TR = re.compile(rb"<TR>")


class CheckError(Exception):
    """An answer with the wrong status or the wrong value."""


@dataclass(frozen=True)
class Request:
    """One prepared request of a kind, with the value its answer must carry."""

    kind: str
    url: str
    params: Mapping[str, str]
    expected: Any
    """rows, a COUNT, a (ny, nx) shape or the ``#this`` access URL's accref"""
    method: str = "GET"


@dataclass
class Outcome:
    """Latencies and errors per kind, filled by the clients."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.latencies.setdefault(kind, []).append(seconds)
                self.checked[kind] = self.checked.get(kind, 0) + 1
            else:
                self.errors.append(f"{kind}: {error}")

    @property
    def requests(self) -> int:
        return sum(self.checked.values()) + len(self.errors)

    def percentile(self, kind: str, q: float) -> float:
        values = self.latencies.get(kind)
        return float(np.percentile(values, q) * 1e3) if values else math.nan


# ---------------------------------------------------------------- the workload

def _centres(rng: np.random.Generator, n: int) -> list[tuple[float, float]]:
    """``n`` positions inside the demo fields (central 60 %)."""
    out = []
    for i in range(n):
        f = DEMO_FIELDS[i % len(DEMO_FIELDS)]
        half = f.size_deg / 2 * 0.6
        dec = f.dec + rng.uniform(-half, half)
        ra = f.ra + rng.uniform(-half, half) / math.cos(math.radians(dec))
        out.append((float(ra), float(dec)))
    return out


def _cone_adql(ra: float, dec: float, r: float, select: str = "source_id, ra, dec") -> str:
    return (f"SELECT {select} FROM gaia.sources WHERE "
            f"1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra!r}, {dec!r}, {r!r}))")


_CONE_SQL = ("SELECT count(*) FROM gaia.sources WHERE spoint(radians(ra), radians(dec))"
             " <@ scircle(spoint(radians(%s), radians(%s)), radians(%s))")
_SIA_SQL = ("SELECT count(*) FROM ivoa.obscore WHERE source_table = %s AND s_region &&"
            " scircle(spoint(radians(%s), radians(%s)), radians(%s))")
# SIA 1.0 (POS, SIZE, default INTERSECT=OVERLAPS): the image's coverage overlaps the
# RA/Dec box of SIZE (its RA side stretched by 1/cos(dec), as SIA 1.0 prescribes)
_SIA1_SQL = ("SELECT count(*) FROM {table} WHERE coverage && sbox("
             "spoint(radians(%s), radians(%s)), spoint(radians(%s), radians(%s)))")


def _sia1_box(ra: float, dec: float, size: float) -> tuple[float, float, float, float]:
    half_ra, half_dec = size / 2 / math.cos(math.radians(dec)), size / 2
    return ra - half_ra, dec - half_dec, ra + half_ra, dec + half_dec


def cutout_shape(path: Path, ext: int, ra: float, dec: float, radius: float) -> tuple[int, int]:
    """(ny, nx) of a SODA circle cutout: the circle's pixel bounding box in the file.

    SODA cuts the pixels that the circle touches: the pixel bounds of the
    circle's outline under the extension's WCS, clipped to the image.
    """
    header = fits.getheader(path, ext)
    wcs = WCS(header)
    angles = np.linspace(0, 2 * np.pi, 181)
    cosdec = math.cos(math.radians(dec))
    x, y = wcs.all_world2pix(ra + radius * np.cos(angles) / cosdec,
                             dec + radius * np.sin(angles), 0)
    nx, ny = header["NAXIS1"], header["NAXIS2"]
    x0, x1 = max(0, math.floor(x.min() + 0.5)), min(nx - 1, math.floor(x.max() + 0.5))
    y0, y1 = max(0, math.floor(y.min() + 0.5)), min(ny - 1, math.floor(y.max() + 0.5))
    return y1 - y0 + 1, x1 - x0 + 1


def prepare(settings: Settings, urls: Mapping[str, Any], n: int = 24, seed: int = 13
            ) -> dict[str, list[Request]]:
    """``n`` requests per kind with their expected values, from SQL and the files.

    The SQL reads as an anonymous request (:func:`public.connect`): the counts
    are the public's, and the images sampled for cutouts and DataLink are
    those the public may have.
    """
    rng = np.random.default_rng(seed)
    tap = urls["tap"]
    out: dict[str, list[Request]] = {k: [] for k in MIX}
    with public.connect(settings) as conn:
        for ra, dec in _centres(rng, n):
            rows = conn.execute(_CONE_SQL, (ra, dec, CONE_DEG)).fetchone()[0]
            out["tap sync"].append(Request("tap sync", f"{tap}/sync", {
                "REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "votable/td",
                "QUERY": _cone_adql(ra, dec, CONE_DEG)}, rows, "POST"))
            out["tap async"].append(Request("tap async", f"{tap}/async", {
                "REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "votable/td",
                "QUERY": _cone_adql(ra, dec, CONE_DEG)}, rows, "POST"))
            out["scs"].append(Request("scs", urls["scs"]["gaia.sources"], {
                "RA": repr(ra), "DEC": repr(dec), "SR": repr(CONE_DEG),
                "RESPONSEFORMAT": "votable/td"}, rows))
        for ra, dec in _centres(rng, n):
            count = conn.execute(_CONE_SQL, (ra, dec, COUNT_DEG)).fetchone()[0]
            out["tap count"].append(Request("tap count", f"{tap}/sync", {
                "REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "csv",
                "QUERY": _cone_adql(ra, dec, COUNT_DEG, "COUNT(*) AS n")}, count, "POST"))
        collections = sorted(urls["sia"])
        images = []
        for coll in collections:
            images += conn.execute(
                f"SELECT %s, obs_publisher_did, accref, centeralpha, centerdelta"
                f" FROM {coll}.images ORDER BY accref", (coll,)).fetchall()
        for i in range(n):
            # near an image of the collection, so that most searches find some
            coll = collections[i % len(collections)]
            mine = [im for im in images if im[0] == coll]
            _, _, _, ra, dec = mine[int(rng.integers(len(mine)))]
            dec += rng.uniform(-0.05, 0.05)
            ra += rng.uniform(-0.05, 0.05) / math.cos(math.radians(dec))
            rows = conn.execute(_SIA_SQL, (f"{coll}.images", ra, dec, SIA_DEG)).fetchone()[0]
            out["sia2"].append(Request("sia2", urls["sia"][coll], {
                "POS": f"CIRCLE {ra!r} {dec!r} {SIA_DEG!r}",
                "RESPONSEFORMAT": "votable/td"}, rows))
            size = 2 * SIA_DEG
            rows = conn.execute(_SIA1_SQL.format(table=f"{coll}.images"),
                                _sia1_box(ra, dec, size)).fetchone()[0]
            out["sia1"].append(Request("sia1", urls["sia1"][coll], {
                "POS": f"{ra!r},{dec!r}", "SIZE": repr(size), "MAXREC": "100000",
                "RESPONSEFORMAT": "votable/td"}, rows))
    picks = rng.choice(len(images), size=min(n, len(images)), replace=False)
    for i in picks:
        coll, did, accref, ra, dec = images[int(i)]
        rel, ext = accref.rsplit("/", 1)
        # a little off the centre, so the cutouts differ
        ra2 = ra + rng.uniform(-1, 1) * CUTOUT_DEG / math.cos(math.radians(dec))
        dec2 = dec + rng.uniform(-1, 1) * CUTOUT_DEG
        shape = cutout_shape(settings.data_dir / rel, int(ext), ra2, dec2, CUTOUT_DEG)
        out["soda"].append(Request("soda", urls["soda"][coll], {
            "ID": did, "CIRCLE": f"{ra2!r} {dec2!r} {CUTOUT_DEG!r}"}, shape))
        out["datalink"].append(Request("datalink", urls["datalink"][coll], {"ID": did},
                                       accref))
    return out


# ---------------------------------------------------------------- the checks

def _rows(body: bytes) -> int:
    return len(_TR.findall(body))


def _expect(resp: requests.Response, status: int = 200) -> None:
    if resp.status_code != status:
        raise CheckError(f"HTTP {resp.status_code}, expected {status}: "
                          f"{resp.text[:200]!r}")


def _run_async(session: requests.Session, req: Request) -> bytes:
    """Submit, run, wait until it ends, fetch its result, delete the job."""
    resp = session.post(req.url, data=dict(req.params), timeout=TIMEOUT,
                        allow_redirects=False)
    _expect(resp, 303)
    job = urllib.parse.urljoin(req.url, resp.headers["Location"])
    try:
        _expect(session.post(f"{job}/phase", data={"PHASE": "RUN"}, timeout=TIMEOUT,
                             allow_redirects=False), 303)
        deadline = time.monotonic() + TIMEOUT
        while True:
            phase = session.get(f"{job}/phase", timeout=TIMEOUT)
            _expect(phase)
            state = phase.text.strip()
            if state == "COMPLETED":
                break
            if state not in ("QUEUED", "EXECUTING") or time.monotonic() > deadline:
                raise CheckError(f"job {job} ended in {state}")
            # UWS 1.1 blocking wait: returns when the phase leaves ``state``
            _expect(session.get(job, params={"WAIT": "10", "PHASE": state},
                                timeout=TIMEOUT))
        result = session.get(f"{job}/results/result", timeout=TIMEOUT)
        _expect(result)
        return result.content
    finally:
        gone = session.delete(job, timeout=TIMEOUT, allow_redirects=False)
        if gone.status_code not in (200, 303):
            raise CheckError(f"DELETE {job}: HTTP {gone.status_code}")


def check(session: requests.Session, req: Request) -> None:
    """Send ``req`` and check its answer; raise :class:`CheckError` if wrong."""
    if req.kind == "tap async":
        body = _run_async(session, req)
    else:
        if req.method == "POST":
            resp = session.post(req.url, data=dict(req.params), timeout=TIMEOUT)
        else:
            resp = session.get(req.url, params=dict(req.params), timeout=TIMEOUT)
        _expect(resp)
        body = resp.content
    if req.kind in ("tap sync", "tap async", "scs", "sia2", "sia1"):
        if b'name="QUERY_STATUS" value="OVERFLOW"' in body:
            raise CheckError("result cut (OVERFLOW)")
        got = _rows(body)
    elif req.kind == "tap count":
        lines = body.decode().split()
        got = int(lines[1]) if len(lines) == 2 and lines[0] == "n" else lines
    elif req.kind == "soda":
        with fits.open(io.BytesIO(body)) as hdul:
            data = next(h for h in hdul if h.data is not None).data
            got = tuple(data.shape)
    else:  # datalink: the #this link is the image itself, and nothing failed
        text = body.decode()
        if "#this" not in text or "#cutout" not in text:
            raise CheckError("no #this or #cutout link")
        if re.search(r"<TD>[^<]*(NotFoundFault|Fault)", text):
            raise CheckError("a fault row")
        got = req.expected if urllib.parse.quote(req.expected, safe="/") in text else None
    if got != req.expected:
        raise CheckError(f"{req.params}: got {got}, expected {req.expected}")


# ---------------------------------------------------------------- the run

def run(work: Mapping[str, list[Request]], clients: int, seconds: float, seed: int = 0,
        on_error: Callable[[str], None] | None = None) -> Outcome:
    """``clients`` threads send the mix for ``seconds`` (each finishes its request)."""
    kinds = [k for k in MIX if work.get(k)]
    weights = np.array([MIX[k] for k in kinds])
    weights = weights / weights.sum()
    # an async job lasts seconds: none starts in the last half of the run, so the
    # run ends close to ``seconds`` (requests under way when it ends are finished)
    late = np.array([0.0 if k == "tap async" else MIX[k] for k in kinds])
    late = late / late.sum()
    outcome = Outcome()
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        rng = np.random.default_rng(seed * 1000 + index)
        session = requests.Session()
        session.auth = None  # anonymous: the public, whose answers prepare() computed
        barrier.wait()
        end = time.perf_counter() + seconds
        first = True
        while time.perf_counter() < end:
            # each client starts with a different kind, so a short run has them all
            now = time.perf_counter()
            p = weights if now < end - seconds / 2 else late
            kind = (kinds[index % len(kinds)] if first
                    else kinds[int(rng.choice(len(kinds), p=p))])
            first = False
            req = work[kind][int(rng.integers(len(work[kind])))]
            t = time.perf_counter()
            error = None
            try:
                check(session, req)
            except (CheckError, requests.RequestException, OSError, ValueError,
                    KeyError, StopIteration) as exc:
                error = f"{type(exc).__name__}: {exc}"
                if on_error:
                    on_error(error)
            outcome.add(kind, time.perf_counter() - t, error)
        session.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    outcome.seconds = time.perf_counter() - start
    return outcome


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import figure, write_json  # bench/report.py, beside this script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="length of the 16-client phase (the 1-client baseline: 1/3)")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    settings = Settings.from_env()
    urls = endpoints(settings)
    work = prepare(settings, urls)
    base = run(work, 1, args.seconds / 3, seed=1)
    load = run(work, args.clients, args.seconds, seed=2, on_error=print)
    n = args.clients
    print(f"{'service':<10} {'1 client p50':>12} {'p95':>8} {f'{n} clients p50':>15} "
          f"{'p95':>8} {'checked':>8}   (ms)")
    figures = [figure(
        f"errors, {n} clients for {load.seconds:.0f} s ({load.requests} requests, "
        "each answer's status and value checked)", len(load.errors), "errors",
        baseline=f"1 client for {base.seconds:.0f} s", baseline_value=len(base.errors),
        ratio=None, goal="0 errors", met=not load.errors and not base.errors)]
    for kind in MIX:
        p50, p95 = load.percentile(kind, 50), load.percentile(kind, 95)
        b50, b95 = base.percentile(kind, 50), base.percentile(kind, 95)
        print(f"{kind:<10} {b50:12.1f} {b95:8.1f} {p50:15.1f} {p95:8.1f} "
              f"{load.checked.get(kind, 0):8d}")
        figures.append(figure(f"{kind}, {n} clients, p50 latency", p50, "ms",
                              baseline="1 client, same mix", baseline_value=b50))
        figures.append(figure(f"{kind}, {n} clients, p95 latency", p95, "ms",
                              baseline="1 client, same mix", baseline_value=b95))
    thr, thr1 = load.requests / load.seconds, base.requests / base.seconds
    figures.append(figure(f"throughput, {n} clients, whole mix", thr, "req/s",
                          baseline="1 client, same mix", baseline_value=thr1))
    print(f"throughput: {thr:.1f} req/s with {n} clients, {thr1:.1f} req/s with 1 "
          f"({thr / thr1:.2f}x); errors: {len(load.errors)} + {len(base.errors)} (goal 0)")
    for error in (base.errors + load.errors)[:10]:
        print("  ", error)
    if args.json:
        write_json(args.json, "load", figures, clients=n, seconds=round(load.seconds, 1),
                   checked=load.checked)


if __name__ == "__main__":
    main()
