"""TAP async (UWS 1.1): job parameters, phases, WAIT, unknown jobs, uploads.

UWS 1.1 takes PHASE (RUN, ABORT), EXECUTIONDURATION (integer seconds),
DESTRUCTION (ISO 8601) and WAIT (integer seconds, -1 for the longest) once
each; job parameters change only while a job is PENDING; a job resource
answers GET, POST (ACTION=DELETE) and DELETE.  The jobs these cases work on
are made when the first case needs them (:attr:`Case.prepare`) and shared:
one PENDING job, one COMPLETED job whose result is checked against the
database, and one job per case that deletes or starts a job.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator

import requests

from tests.integration.corpus import Case, qs
from tests.integration.corpus._db import one, votable_rows
from tests.integration.corpus.tap import BAD_INTEGERS, XXE, billion_laughs

_UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


def _create(tap: str, query: str) -> str:
    answer = requests.post(f"{tap}/async", allow_redirects=False, timeout=30,
                           data={"LANG": "ADQL", "QUERY": query})
    assert answer.status_code == 303, f"job not created: {answer.status_code}"
    return answer.headers["location"]


def _phase(job: str) -> str:
    return requests.get(f"{job}/phase", timeout=30).text.strip()


def _count_query(table: str) -> str:
    return f"SELECT COUNT(*) AS n FROM {table}"


@functools.cache
def pending_job(tap: str, table: str) -> dict[str, str]:
    """A PENDING job, made once per run."""
    return {"job": _create(tap, _count_query(table)).rsplit("/", 1)[1]}


@functools.cache
def _running_jobs(tap: str, table: str) -> dict[str, str]:
    """Two jobs started together (so their runners overlap): a count, and one
    whose upload is no VOTable; made once per run."""
    count = _create(tap, _count_query(table))
    answer = requests.post(
        f"{tap}/async", allow_redirects=False, timeout=30,
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:f"},
        files={"f": ("f.xml", b"<VOTABLE><RESOURCE><TABLE><FIELD name='a'", "text/xml")})
    assert answer.status_code == 303, f"job not created: {answer.status_code}"
    failing = answer.headers["location"]
    for job in (count, failing):
        requests.post(f"{job}/phase", data={"PHASE": "RUN"}, timeout=30)
    return {"count": count, "failing": failing}


def _finished(job: str) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while (phase := _phase(job)) not in ("COMPLETED", "ERROR", "ABORTED"):
        assert time.monotonic() < deadline, "the async job did not finish in 30 s"
        requests.get(job, params={"WAIT": "5", "PHASE": phase}, timeout=30)
    return {"job": job.rsplit("/", 1)[1]}


def completed_job(tap: str, table: str) -> dict[str, str]:
    """A job that ran to COMPLETED."""
    return _finished(_running_jobs(tap, table)["count"])


def failed_upload_job(tap: str, table: str) -> dict[str, str]:
    """A job whose upload is no VOTable, run to ERROR."""
    return _finished(_running_jobs(tap, table)["failing"])


def _failed_with_message(answer: requests.Response) -> None:
    _job_document("ERROR")(answer)
    text = answer.content.decode("utf-8")
    assert "upload t" in text, text[-300:]
    assert "/work/" not in text and "/var/" not in text, "a server path in the job"


def fresh_job(tap: str, table: str) -> Callable[[], dict[str, str]]:
    """A job of its own for a case that deletes or starts it."""
    return lambda: {"job": _create(tap, _count_query(table)).rsplit("/", 1)[1]}


def _job_document(phase: str):
    def check(answer: requests.Response) -> None:
        from xml.etree import ElementTree

        tree = ElementTree.fromstring(answer.content)
        assert tree.findtext(f"{_UWS}phase") == phase, tree.findtext(f"{_UWS}phase")
    return check


def _text(value: str):
    def check(answer: requests.Response) -> None:
        assert answer.text.strip() == value, answer.text[:80]
    return check


def _job_location(tap: str):
    def check(answer: requests.Response) -> None:
        assert re.search(r"/async/[\w-]+$", answer.headers["location"]), \
            answer.headers["location"]
    return check


def _count(table: str):
    def check(answer: requests.Response) -> None:
        got = int(votable_rows(answer)[0][0])
        want = one(f"SELECT COUNT(*) FROM {table}")
        assert got == want, f"async result {got}, the database {want}"
    return check


def _job_list(answer: requests.Response) -> None:
    assert b"<uws:jobs" in answer.content, answer.text[:200]


def cases(endpoints: dict) -> Iterator[Case]:
    tap = endpoints.get("tap")
    if not tap:
        return
    table = (sorted(endpoints.get("scs", {})) or ["tap_schema.tables"])[0]
    jobs = f"{tap}/async"
    job = jobs + "/{job}"
    pending = functools.partial(pending_job, tap, table)
    completed = functools.partial(completed_job, tap, table)
    query = _count_query(table)

    # the valid half
    yield Case("uws", "create a job", jobs, method="POST", status=303,
               data={"LANG": "ADQL", "QUERY": query}, check=_job_location(tap))
    yield Case("uws", "create a job, Unicode RUNID", jobs, method="POST", status=303,
               data={"LANG": "ADQL", "QUERY": query, "RUNID": "Ωµ€ 日本語 👍 مرحبا"})
    yield Case("uws", "job list", jobs, status=200, check=_job_list)
    yield Case("uws", "pending job", job, prepare=pending, status=200,
               check=_job_document("PENDING"))
    yield Case("uws", "pending phase", job + "/phase", prepare=pending, status=200,
               check=_text("PENDING"))
    yield Case("uws", "WAIT=0 answers at once", job, prepare=pending, query="WAIT=0",
               status=200, check=_job_document("PENDING"))
    yield Case("uws", "WAIT=1 on a pending job", job, prepare=pending, query="WAIT=1",
               status=200, check=_job_document("PENDING"))
    yield Case("uws", "set EXECUTIONDURATION", job + "/executionduration", prepare=pending,
               method="POST", data={"EXECUTIONDURATION": "120"}, status=303)
    yield Case("uws", "set DESTRUCTION", job + "/destruction", prepare=pending,
               method="POST", data={"DESTRUCTION": "2099-01-01T00:00:00Z"}, status=303)
    yield Case("uws", "set parameters while pending", job + "/parameters", prepare=pending,
               method="POST", data={"MAXREC": "10"}, status=303)
    yield Case("uws", "completed job", job, prepare=completed, status=200,
               check=_job_document("COMPLETED"))
    yield Case("uws", "huge WAIT on a completed job answers", job, prepare=completed,
               query="WAIT=100000", status=200, check=_job_document("COMPLETED"))
    yield Case("uws", "result against the database", job + "/results/result",
               prepare=completed, status=200, check=_count(table))
    yield Case("uws", "DELETE a job", job, prepare=fresh_job(tap, table), method="DELETE",
               status=303)
    yield Case("uws", "POST ACTION=DELETE", job, prepare=fresh_job(tap, table),
               method="POST", data={"ACTION": "DELETE"}, status=303)
    yield Case("uws", "ABORT a pending job", job + "/phase", prepare=fresh_job(tap, table),
               method="POST", data={"PHASE": "ABORT"}, status=303)

    yield Case("uws", "malformed upload makes the job fail, saying why", job,
               prepare=functools.partial(failed_upload_job, tap, table), status=200,
               check=_failed_with_message)

    # WAIT
    for name, value in {**BAD_INTEGERS, "below -1": "-2", "huge negative": "-99999"}.items():
        if name == "negative":
            continue  # -1 is UWS's "as long as the server allows"
        yield Case("uws", f"WAIT {name}", job, prepare=pending, query=qs(("WAIT", value)),
                   status=400, needle="WAIT")
    yield Case("uws", "WAIT twice", job, prepare=pending, query="WAIT=1&WAIT=2", status=400,
               needle="WAIT")
    yield Case("uws", "WAIT with an unknown PHASE", job, prepare=pending,
               query="WAIT=1&PHASE=SLEEPING", status=400, needle="PHASE")

    # EXECUTIONDURATION, DESTRUCTION, PHASE
    for name, value in {**BAD_INTEGERS, "too long": "99999999999"}.items():
        yield Case("uws", f"EXECUTIONDURATION {name}", job + "/executionduration",
                   prepare=pending, method="POST", data={"EXECUTIONDURATION": value},
                   status=400, needle="EXECUTIONDURATION")
    for name, value in {"word": "tomorrow", "month 13": "2030-13-01T00:00:00",
                        "day 45": "2030-01-45T00:00:00", "past": "2000-01-01T00:00:00Z",
                        "number": "1893456000",
                        "arabic digits": "\u0662\u0660\u0663\u0660-01-01T00:00:00",
                        "NUL": "2030-01-01T00:00:00\x00",
                        "empty time zone": "2030-01-01T00:00:00+"}.items():
        yield Case("uws", f"DESTRUCTION {name}", job + "/destruction", prepare=pending,
                   method="POST", data={"DESTRUCTION": value}, status=400,
                   needle="DESTRUCTION")
    for value in ("FOO", "run", "RUN ", "SUSPEND", "", "R\u00dcN"):
        yield Case("uws", f"PHASE {value!r}", job + "/phase", prepare=pending,
                   method="POST", data={"PHASE": value}, status=400, needle="PHASE")
    yield Case("uws", "PHASE twice", job + "/phase", prepare=pending, method="POST",
               data=[("PHASE", "RUN"), ("PHASE", "ABORT")], status=400, needle="PHASE")
    yield Case("uws", "EXECUTIONDURATION twice", job + "/executionduration", prepare=pending,
               method="POST", data=[("EXECUTIONDURATION", "10"), ("EXECUTIONDURATION", "20")],
               status=400, needle="EXECUTIONDURATION")
    yield Case("uws", "POST to a job without ACTION", job, prepare=pending, method="POST",
               data={"MAXREC": "5"}, status=400, needle="ACTION")
    yield Case("uws", "POST to a job, ACTION unknown", job, prepare=pending, method="POST",
               data={"ACTION": "EXPLODE"}, status=400, needle="ACTION")

    # parameters
    yield Case("uws", "parameters after the job ran", job + "/parameters",
               prepare=completed, method="POST", data={"MAXREC": "5"}, status=400,
               needle="COMPLETED")
    yield Case("uws", "MAXREC underscore", job + "/parameters", prepare=pending,
               method="POST", data={"MAXREC": "1_0"}, status=400, needle="MAXREC")
    for name in ("LANG", "QUERY", "MAXREC", "RESPONSEFORMAT", "RUNID"):
        value = {"LANG": "ADQL", "QUERY": query, "MAXREC": "10",
                 "RESPONSEFORMAT": "votable", "RUNID": "x"}[name]
        pairs = [p for p in (("LANG", "ADQL"), ("QUERY", query)) if p[0] != name]
        yield Case("uws", f"create with {name} twice", jobs, method="POST", status=400,
                   needle=name, data=[*pairs, (name, value), (name, value)])
        yield Case("uws", f"{name} twice on parameters", job + "/parameters",
                   prepare=pending, method="POST", data=[(name, value), (name, value)],
                   status=400, needle=name)
    yield Case("uws", "create, NUL in QUERY", jobs, method="POST", status=400, needle="QUERY",
               data={"LANG": "ADQL", "QUERY": query + "\x00"})
    yield Case("uws", "create, invalid UTF-8 in QUERY", jobs, method="POST", status=400,
               needle="QUERY", data=b"LANG=ADQL&QUERY=SELECT%20%FF",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    yield Case("uws", "create, MAXREC hex", jobs, method="POST", status=400, needle="MAXREC",
               data={"LANG": "ADQL", "QUERY": query, "MAXREC": "0x10"})

    # unknown jobs and methods
    for suffix in ("", "/phase", "/parameters", "/results/result", "/error",
                   "/executionduration"):
        yield Case("uws", f"unknown job{suffix}", f"{jobs}/nosuchjob{suffix}", status=404)
    yield Case("uws", "DELETE an unknown job", f"{jobs}/nosuchjob", method="DELETE",
               status=404)
    yield Case("uws", "POST PHASE to an unknown job", f"{jobs}/nosuchjob/phase",
               method="POST", data={"PHASE": "RUN"}, status=404)
    yield Case("uws", "unknown job action", job + "/explode", prepare=pending, status=404)
    for method in ("PUT", "PATCH", "DELETE"):
        yield Case("uws", f"{method} on the job list", jobs, method=method, status=405,
                   needle=method)
        yield Case("uws", f"{method} on a job's phase", job + "/phase", prepare=pending,
                   method=method, status=405, needle=method)
    for method in ("PUT", "PATCH"):
        yield Case("uws", f"{method} on a job", job, prepare=pending, method=method,
                   status=405, needle=method)

    # uploads with the job
    def upload(name: str, content: bytes) -> Case:
        return Case("uws", f"create with upload {name}", jobs, method="POST", status=400,
                    needle="DOCTYPE", files={"f": ("f.xml", content, "text/xml")},
                    data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t",
                          "UPLOAD": "t,param:f"})

    yield upload("XML external entity", XXE)
    yield upload("billion laughs", billion_laughs())
    yield Case("uws", "create with an upload param missing", jobs, method="POST",
               status=400, needle="nothere",
               data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t",
                     "UPLOAD": "t,param:nothere"})
