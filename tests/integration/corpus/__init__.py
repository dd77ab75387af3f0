"""casuvo's corpus of requests: bad input that must get a protocol error, and
valid input whose answers are checked against values.

Each module of this package holds the cases of one protocol (or of plain
HTTP) and exposes ``cases(endpoints) -> Iterable[Case]``, generated from
``casuvo endpoints --json``: every service of that protocol gets every case, so
a new collection or survey is covered the day it appears.  ``test_corpus.py``
runs them all; ``python -m tests.integration.corpus BASE_URL`` prints the
table by service (used to compare with a DaCHS without casuvo's adjustments).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import requests
import requests.auth

__all__ = ["Case", "generate", "qs", "run", "verdict"]


def qs(*pairs: tuple[str, str]) -> str:
    """An encoded query string; pairs may repeat a name (``qs(("RA", "1"), ("RA", "2"))``)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


@dataclass(frozen=True)
class Case:
    """One request and what its answer must be."""

    service: str
    """protocol key as in ``casuvo endpoints --json`` (``tap``, ``scs``, ``sia``,
    ``sia1``, ``soda``, ``datalink``, ``form``, ``pages``) or ``uws``/``http``"""
    name: str
    """what the case tries, short and unique within ``service`` and ``url``"""
    url: str
    query: str = ""
    """already encoded query string (so that raw bytes like ``%FF`` or ``%00``
    can be sent as they are); build it with :func:`qs`"""
    method: str = "GET"
    data: bytes | dict | None = None
    files: dict | None = None
    headers: dict = field(default_factory=dict)
    status: int = 400
    """the status the answer must have (a 4xx for bad input, 200 for valid)"""
    needle: str = ""
    """text the answer must contain (for errors: the parameter or the limit named)"""
    check: Callable[[requests.Response], None] | None = None
    """for valid cases: asserts on the values of the answer"""
    authorization: str | None = None
    """the request's own ``Authorization`` header, sent as it is in place of the
    session's credentials (cases of the authenticated paths)"""
    prepare: Callable[[], dict[str, str]] | None = None
    """for requests to a resource made at run time (a UWS job): returns the
    values for the ``{name}`` fields of ``url`` (the resource is made once and
    shared by the cases that name the same function)"""

    @property
    def id(self) -> str:
        path = urlsplit(self.url).path
        return f"{self.service}:{path}:{self.name}"

    def send(self, session: requests.Session | None = None,
             timeout: float = 60) -> requests.Response:
        url = self.url.format(**self.prepare()) if self.prepare else self.url
        url = f"{url}?{self.query}" if self.query else url
        sender = session or requests
        auth = _RawAuthorization(self.authorization) if self.authorization is not None else None
        return sender.request(self.method, url, data=self.data, files=self.files,
                              headers=self.headers, timeout=timeout, allow_redirects=False,
                              auth=auth)


class _RawAuthorization(requests.auth.AuthBase):
    """Sends an ``Authorization`` header exactly as given (also malformed ones)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.value
        return request


def generate(endpoints: dict) -> list[Case]:
    """All cases of all modules of this package, for the services in ``endpoints``."""
    found: list[Case] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(module.cases(endpoints))
    ids = [c.id for c in found]
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, f"corpus case ids are not unique: {sorted(dupes)[:5]}"
    return found


def verdict(case: Case, answer: requests.Response) -> str:
    """Why ``answer`` is not what ``case`` requires ("" if it is)."""
    # VO documents are UTF-8 even where the content type names no charset
    text = answer.content.decode("utf-8", "replace")
    if answer.status_code != case.status:
        return f"want {case.status}, got {answer.status_code}: {text[:100]!r}"
    if case.needle and case.needle.lower() not in text.lower():
        return f"{case.needle!r} not in {text[:100]!r}"
    if answer.status_code >= 400 and ("Traceback" in text or "/work/" in text
                                      or "/var/" in text or "/usr/" in text):
        return "a traceback or server file path in the answer"
    if case.check is not None:
        try:
            case.check(answer)
        except (AssertionError, ValueError, KeyError, IndexError) as exc:
            return f"check failed: {exc!s:.100}"
    return ""


def run(cases: Iterable[Case]) -> Iterator[tuple[Case, int, str]]:
    """(case, status got, why it is wrong or "") for each case; for the CLI table."""
    with requests.Session() as session:
        for case in cases:
            try:
                answer = case.send(session)
            except (requests.RequestException, AssertionError, KeyError) as exc:
                yield case, 0, f"no answer: {exc!s:.150}"
                continue
            yield case, answer.status_code, verdict(case, answer)
