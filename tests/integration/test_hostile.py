# SPDX-License-Identifier: BSD-3-Clause
"""No request degrades the service for others (issue 13, item 1).

Every expensive class of request is fired at once — an IN list of 20,000
items, 60,000 OR terms under 1 MB, parentheses 2,000 deep, a 3 MB query text,
a self cross join of gaia.sources without a spatial constraint (TAP sync),
the same as a TAP async job, and an async job over the IN-list limit — while
two clients keep sending cheap requests (``/tap/availability``,
``/tap/capabilities``, a 5″ SCS cone).  Each hostile request must get its 4xx
naming the limit, or the timeout error; the cross joins must be gone from the
database afterwards; and the health requests must keep a p95 under 100 ms
(the one timing assertion issue 13 asks for).  With
``CASUVO_SERVER_PROCESSES=1`` there is no process isolation, so only the
refusals and the cancellation are asserted there.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

import numpy as np
import psycopg
import pytest
import requests
from astropy.io.votable import parse

from casuvo.config import Settings
from casuvo.dachs.limits import TIMEOUTS

pytestmark = pytest.mark.integration

P95_LIMIT_MS = 100.0
CROSS_JOIN = ("SELECT COUNT(*) AS n FROM gaia.sources AS a, gaia.sources AS b "
              "WHERE a.phot_g_mean_mag < b.phot_g_mean_mag")
ASYNC_EXECUTION_S = 5
TIMED_OUT = "Query timed out"


def _error_message(response: requests.Response) -> str:
    """QUERY_STATUS of a DALI error document (asserting that it is one)."""
    vot = parse(io.BytesIO(response.content), verify="ignore")
    infos = [i for res in vot.resources for i in res.infos] + list(vot.infos)
    status = [i for i in infos if i.name == "QUERY_STATUS"]
    assert status and status[0].value == "ERROR", response.text[:300]
    return status[0].content or ""


class CheapStream:
    """Two clients sending cheap requests in a loop; latencies while ``record`` is set."""

    def __init__(self, endpoints: dict) -> None:
        base = endpoints["base"].rstrip("/")
        scs = endpoints["scs"]["gaia.sources"]
        self.urls = [(f"{base}/tap/availability", {}), (f"{base}/tap/capabilities", {}),
                     (scs, {"RA": 194.30, "DEC": -64.75, "SR": 5 / 3600})]
        self.latencies: list[float] = []
        self.health: list[float] = []
        """latencies of the health and VOSI requests alone (the light process's)"""
        self.failures: list[str] = []
        self.record = threading.Event()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(2)]

    def _client(self, index: int) -> None:
        with requests.Session() as session:
            i = index
            while not self.stop.is_set():
                url, params = self.urls[i % len(self.urls)]
                i += 1
                recording = self.record.is_set()
                t = time.perf_counter()
                try:
                    ok = session.get(url, params=params, timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                dt = time.perf_counter() - t
                if recording:
                    self.latencies.append(dt)
                    if url != self.urls[-1][0]:
                        self.health.append(dt)
                    if not ok:
                        self.failures.append(url)
                time.sleep(0.02)

    def __enter__(self) -> CheapStream:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=35)


def _sync(tap: str, query: str) -> requests.Response:
    return requests.post(f"{tap}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                              "QUERY": query}, timeout=60)


def _async_error(tap: str, query: str, execution_s: int | None = None) -> str:
    """Run ``query`` as an async job; the job must end in ERROR: its error message."""
    created = requests.post(f"{tap}/async", data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query},
        allow_redirects=False, timeout=60)
    assert created.status_code == 303, created.text[:300]
    job = created.headers["location"]
    try:
        if execution_s is not None:
            requests.post(f"{job}/executionduration", data={"EXECUTIONDURATION": execution_s},
                          allow_redirects=False, timeout=30)
        requests.post(f"{job}/phase", data={"PHASE": "RUN"}, allow_redirects=False,
                      timeout=30)
        deadline, phase = time.monotonic() + 35, ""
        while time.monotonic() < deadline:
            phase = requests.get(f"{job}/phase", timeout=30).text.strip()
            if phase in ("COMPLETED", "ERROR", "ABORTED"):
                break
            time.sleep(0.5)
        assert phase == "ERROR", phase
        return _error_message(requests.get(f"{job}/error", timeout=30))
    finally:
        requests.delete(job, allow_redirects=False, timeout=30)


def test_hostile_requests_are_refused_or_cancelled_while_health_stays_fast(
        endpoints: dict, settings: Settings) -> None:
    tap = endpoints["tap"].rstrip("/")
    in_list = ("SELECT source_id FROM gaia.sources WHERE source_id IN ("
               + ", ".join(str(4_000_000_000 + i) for i in range(20_000)) + ")")
    or_terms = "SELECT source_id FROM gaia.sources WHERE " + " OR ".join(
        f"ra={i}" for i in range(60_000))
    assert len(or_terms) < 1_000_000
    nested = "SELECT source_id FROM gaia.sources WHERE " + "(" * 2000 + "ra>0" + ")" * 2000
    huge = "SELECT source_id FROM gaia.sources -- " + "x" * 3_000_000
    # (what to send, the statuses allowed, the text the answer must name)
    hostile: dict[str, tuple[Callable[[], requests.Response | str], tuple[int, ...], str]] = {
        "in-list": (lambda: _sync(tap, in_list), (400,), "ADQL limit max_in_items"),
        "or-terms": (lambda: _sync(tap, or_terms), (400,), "ADQL limit max_terms"),
        "nesting": (lambda: _sync(tap, nested), (400,), "ADQL limit max_depth"),
        # the front refuses a form body over 1 MiB itself (413); DaCHS alone: 400
        "huge text": (lambda: _sync(tap, huge), (400, 413), "ADQL limit max_length"),
        "cross join": (lambda: _sync(tap, CROSS_JOIN), (400,), TIMED_OUT),
        "async cross join": (lambda: _async_error(tap, CROSS_JOIN, ASYNC_EXECUTION_S), (),
                             TIMED_OUT),
        "async in-list": (lambda: _async_error(tap, in_list), (), "ADQL limit max_in_items"),
    }
    answers: dict[str, requests.Response | str | BaseException] = {}

    def fire(name: str) -> None:
        try:
            answers[name] = hostile[name][0]()
        except BaseException as exc:  # reported by the assertions below
            answers[name] = exc

    # every server process warm (its first TAP query and cone load what they need)
    for _ in range(max(2, settings.dachs_processes)):
        assert _sync(tap, "SELECT TOP 1 source_id FROM gaia.sources").status_code == 200
    with CheapStream(endpoints) as stream:
        time.sleep(1.5)  # connections warm
        stream.record.set()
        started = time.monotonic()
        threads = [threading.Thread(target=fire, args=(n,)) for n in hostile]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        stream.record.clear()
        elapsed = time.monotonic() - started

    for name, (_, statuses, needle) in hostile.items():
        answer = answers.get(name)
        assert not isinstance(answer, BaseException), (name, answer)
        if isinstance(answer, str):  # an async job's error message
            assert needle in answer, (name, answer[:300])
            continue
        assert answer is not None, name
        assert answer.status_code in statuses, (name, answer.status_code, answer.text[:300])
        assert needle in _error_message(answer), (name, answer.text[:400])
    # the sync cross join came back from its statement timeout, within the client's
    assert elapsed < TIMEOUTS.tap_sync_s + 40

    # PostgreSQL is working on none of them any more
    with psycopg.connect(settings.dsn) as conn:
        busy = conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity WHERE usename = 'untrusted'"
            " AND state <> 'idle' AND pid <> pg_backend_pid()").fetchall()
    assert busy == [], busy

    assert stream.failures == [], stream.failures[:5]
    assert len(stream.latencies) > 50
    print(f"cheap requests while hostile ones ran: n={len(stream.latencies)}, "
          f"p50 {np.percentile(stream.latencies, 50) * 1e3:.0f} ms, "
          f"p95 {np.percentile(stream.latencies, 95) * 1e3:.0f} ms (cones included)")
    # the bound is on health requests; the cones share the saturated work
    # processes with the hostile requests and must only succeed (checked above)
    p95 = float(np.percentile(stream.health, 95) * 1e3)
    if settings.dachs_processes > 1:
        assert p95 < P95_LIMIT_MS, (
            f"health requests' p95 {p95:.0f} ms while hostile requests ran "
            f"(p50 {np.percentile(stream.health, 50) * 1e3:.0f} ms, n={len(stream.health)})")


def test_adql_form_refuses_a_query_over_the_limits(endpoints: dict) -> None:
    """DaCHS's ADQL web form runs the same guard (it shows the refusal in the form)."""
    form = endpoints["base"].rstrip("/") + "/__system__/adql/query/form"
    query = ("SELECT source_id FROM gaia.sources WHERE source_id IN ("
             + ", ".join(map(str, range(500))) + ")")
    answer = requests.post(form, data={"query": query, "__nevow_form__": "genForm",
                                       "_FORMAT": "HTML"}, timeout=60)
    assert answer.status_code < 500, answer.text[:300]
    assert "ADQL limit max_in_items" in answer.text
    assert "the query has 500 items in one IN list" in answer.text


def _untrusted_active(settings: Settings) -> list[tuple]:
    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(
            "SELECT pid, query FROM pg_stat_activity WHERE usename = 'untrusted'"
            " AND state = 'active' AND pid <> pg_backend_pid()").fetchall()


def test_deleting_a_running_async_job_cancels_its_query(endpoints: dict,
                                                        settings: Settings) -> None:
    """DaCHS 2.7 alone leaves the query running to its timeout (an hour by default)."""
    tap = endpoints["tap"].rstrip("/")
    created = requests.post(f"{tap}/async", data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": CROSS_JOIN},
        allow_redirects=False, timeout=60)
    assert created.status_code == 303, created.text[:300]
    job = created.headers["location"]
    try:
        requests.post(f"{job}/phase", data={"PHASE": "RUN"}, allow_redirects=False,
                      timeout=30)
        deadline = time.monotonic() + 30
        while not _untrusted_active(settings) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _untrusted_active(settings), "the job's query never reached the database"
    finally:
        deleted = requests.delete(job, allow_redirects=False, timeout=30)
    assert deleted.status_code in (200, 303)
    deadline = time.monotonic() + 10
    while _untrusted_active(settings) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _untrusted_active(settings) == []
    assert requests.get(job, timeout=30).status_code == 404
