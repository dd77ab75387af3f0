"""Plain HTTP against every URL in the endpoints: methods, paths, bytes in parameters.

Whatever the protocol behind a URL, the server must answer a method it does
not allow with 405 and an ``Allow`` header (OPTIONS with the same header),
refuse path traversal (``..``, ``%2e%2e``, encoded slashes, ``//``) with
404, NUL bytes or invalid UTF-8 in parameters with 400 naming the parameter, and take
any Unicode text.  The valid half fetches the read-only resources (VOSI, the
HiPS list, the MOCs, the pages) and checks what they say.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import requests

from tests.integration.corpus import Case, qs


def urls(endpoints: dict) -> list[str]:
    """Every URL in ``endpoints`` (nested maps included), once, sorted."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(endpoints)
    return sorted(found)


def _allow_header(*, without: str, having: str = "GET"):
    def check(answer: requests.Response) -> None:
        allow = {m.strip() for m in answer.headers.get("allow", "").split(",")}
        assert having in allow, f"Allow header {allow} lacks {having}"
        assert without not in allow, f"Allow header {allow} lists {without}"
    return check


def _with_path(url: str, extra: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + extra))


def _doubled_slash(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/") or "/x"
    head, _, tail = path.rpartition("/")
    return urlunsplit(parts._replace(path=f"{head}//{tail}"))


def _contains(*needles: str):
    def check(answer: requests.Response) -> None:
        for needle in needles:
            assert needle in answer.text, f"{needle!r} not in the answer"
    return check


def _is_moc(answer: requests.Response) -> None:
    from astropy.io import fits

    with fits.open(io.BytesIO(answer.content)) as hdus:
        assert hdus[1].header["MOCDIM"] == "SPACE"
        assert len(hdus[1].data) > 0


def _valid(endpoints: dict) -> Iterator[Case]:
    base = endpoints["base"].rstrip("/")
    tap = endpoints["tap"]
    tables = [t for t in endpoints.get("scs", {})]
    yield Case("http", "get capabilities", f"{tap}/capabilities", status=200,
               check=_contains("ivo://ivoa.net/std/TAP", f">{tap}<"))
    yield Case("http", "get availability", f"{tap}/availability", status=200,
               check=_contains("<avl:available>true</avl:available>"))
    yield Case("http", "get tables", endpoints["tables"], status=200,
               check=_contains(*tables))
    yield Case("http", "unicode parameter ignored", f"{tap}/availability",
               query=qs(("NOTE", "Ωµ€ 日本 👍 مرحبا e\u0301 \u202e")), status=200,
               check=_contains("<avl:available>true</avl:available>"))
    yield Case("http", "head capabilities", f"{tap}/capabilities", method="HEAD",
               status=200)
    yield Case("http", "options sync", f"{tap}/sync", method="OPTIONS", status=204,
               check=_allow_header(without="DELETE", having="POST"))
    yield Case("http", "get root", f"{base}/", status=200)
    yield Case("http", "get the pages' script", f"{base}/static/js/jquery-gavo.js",
               status=200, check=_contains("$.widget"))
    if "hipslist" in endpoints:
        yield Case("http", "get hipslist", endpoints["hipslist"], status=200,
                   check=_contains(*(u.rsplit("/", 2)[-2] + "/" + u.rsplit("/", 1)[-1]
                                     for u in endpoints.get("hips", {}).values())))
    for name, url in endpoints.get("moc", {}).items():
        yield Case("http", f"get moc {name}", url, status=200, check=_is_moc)
    for name, url in endpoints.get("hips", {}).items():
        yield Case("http", f"get hips properties {name}", url + "/properties", status=200,
                   check=_contains("hips_order", "creator_did"))


def cases(endpoints: dict) -> Iterator[Case]:
    yield from _valid(endpoints)
    for url in urls(endpoints):
        for method in ("PUT", "DELETE", "PATCH"):
            yield Case("http", f"method {method}", url, method=method, status=405,
                       needle=method, check=_allow_header(without=method))
        yield Case("http", "method OPTIONS", url, method="OPTIONS", status=204,
                   check=_allow_header(without="PUT"))
        yield Case("http", "NUL in a parameter", url,
                   query="casuvo_probe=a%00b", status=400, needle="casuvo_probe")
        yield Case("http", "invalid UTF-8 in a parameter", url,
                   query="casuvo_probe=%FF%FEab%C3", status=400, needle="casuvo_probe")
        yield Case("http", "invalid UTF-8 in a parameter name", url,
                   query="casuvo%FF=1", status=400, needle="parameter name")
        yield Case("http", "dot-dot traversal", _with_path(url, "/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
                   status=404, needle="path")
        yield Case("http", "dot-dot with encoded slashes",
                   _with_path(url, "/..%2f..%2f..%2fetc%2fpasswd"), status=404, needle="path")
        yield Case("http", "absolute path segment", _with_path(url, "/%2Fetc%2Fpasswd"),
                   status=404, needle="path")
        yield Case("http", "backslash traversal", _with_path(url, "/..%5c..%5cgavo.rc"),
                   status=404, needle="path")
        yield Case("http", "double slash", _doubled_slash(url), status=404, needle="path")
        yield Case("http", "NUL in the path", _with_path(url, "/a%00b"), status=404,
                   needle="path")
        if "/form" in urlsplit(url).path:
            yield Case("http", "form body with NUL", url, method="POST",
                       data={"casuvo_probe": "x\x00y"}, status=400, needle="casuvo_probe")
            yield Case("http", "form body with invalid UTF-8", url, method="POST",
                       data=b"casuvo_probe=%FF%FE",
                       headers={"Content-Type": "application/x-www-form-urlencoded"},
                       status=400, needle="casuvo_probe")
