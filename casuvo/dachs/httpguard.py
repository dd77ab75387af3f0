# SPDX-License-Identifier: BSD-3-Clause
"""Checks every request passes before DaCHS dispatches it, applied at server start.

DaCHS 2.7 lets through a good deal a public server must refuse: it answers
PUT and DELETE on query endpoints with a usage error (400) and on VOSI
resources with the resource itself (200); invalid UTF-8 in a parameter is
a 500; a repeated single-valued parameter (``LANG``, ``MAXREC``, ``RA``) is
silently taken once; an upload larger than the limit is read to its end
before it is refused, and a VOTable upload may carry a DTD with entity
declarations (external entities, "billion laughs").  :func:`install` wraps
DaCHS's request class so that such requests are answered, before any
service sees them, with:

- 405 and an ``Allow`` header for a method the resource's protocol does not
  allow (:func:`allowed_methods`); OPTIONS is answered here, 204 with
  ``Allow`` (and the CORS pre-flight headers for origins DaCHS admits);
- 404 for a path with ``.``/``..`` segments (also percent-encoded), empty
  segments (``//``), encoded slashes or backslashes, NUL bytes or invalid
  UTF-8 (no resource has such a name; 404 tells nothing about the files);
- 400 naming the parameter for NUL bytes or invalid UTF-8 in a parameter
  name or value (query string or form body; file parts are not text);
- 400 naming the parameter when one that the protocol allows once is given
  twice (:data:`SINGLE`); the protocol's own parameter names are then spelt
  upper-case, as DALI makes them case-insensitive and DaCHS reads ``MAXREC``
  only so spelt;
- 400 naming the upload for a DOCTYPE in an uploaded file (VOTable needs
  none; entities are how XXE and entity-expansion attacks are made);
- 401 (with ``WWW-Authenticate: Basic``) for an ``Authorization`` header that
  is not usable basic credentials — another scheme, bad base64, not UTF-8, no
  ``user:`` — or whose user and password do not check against DaCHS's users
  (:func:`credentials_problem`), before anything else is looked at: DaCHS
  would take a malformed header as anonymous (a client with a broken login
  would silently see public data only), and checks passwords only on the
  paths that ask, after their parameters;
- 413 as soon as the declared length of a body exceeds DaCHS's upload
  limit (``[web]maxSyncUploadSize`` for ``…/sync``, ``maxUploadSize`` else):
  the answer goes out before the body is read; what the client still sends
  is dropped unparsed (closing at once would make clients that send the
  whole body before reading see a reset instead of the 413), and the
  connection is closed when the body ends or passes :data:`DISCARD_CAP`.

The error document is the one the client of the resource reads
(:func:`error_document`): the DALI error VOTable (``QUERY_STATUS=ERROR``),
on Cone Search SCS 1.03's (``INFO name="Error"``), on SODA its text/plain
``UsageError: …``, on forms and pages a small HTML page (also for the 413,
:func:`error_body`).  The message names the parameter, method or limit.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["SINGLE", "allowed_methods", "credentials_problem", "install", "request_problem"]

_installed = False

#: parameters each protocol allows once (DALI 1.1 §3.1: RESPONSEFORMAT,
#: MAXREC, RUNID; TAP 1.1 §2.3: REQUEST, LANG, QUERY, FORMAT, VERSION; UWS 1.1:
#: PHASE, WAIT, EXECUTIONDURATION, DESTRUCTION; SCS 1.03: RA, DEC, SR, VERB;
#: SIA 1.0: POS, SIZE, INTERSECT, VERB).  UPLOAD, and SIA 2.0's, SODA's and
#: DataLink's query parameters (POS, BAND, ID, ...), may repeat.
SINGLE: dict[str, frozenset[str]] = {
    "tap": frozenset({"REQUEST", "LANG", "QUERY", "FORMAT", "RESPONSEFORMAT", "MAXREC",
                      "RUNID", "VERSION", "PHASE", "WAIT", "EXECUTIONDURATION",
                      "DESTRUCTION", "ACTION"}),
    "scs": frozenset({"RA", "DEC", "SR", "VERB", "RESPONSEFORMAT", "MAXREC", "RUNID"}),
    "sia1": frozenset({"POS", "SIZE", "INTERSECT", "VERB", "FORMAT", "RESPONSEFORMAT",
                       "MAXREC", "RUNID"}),
    "dali": frozenset({"RESPONSEFORMAT", "MAXREC", "RUNID"}),
}

_DALI_SYNC = ("GET", "POST", "OPTIONS")
_READ_ONLY = ("GET", "HEAD", "OPTIONS")
_VOSI = re.compile(r"/(capabilities|availability|tables(/.*)?|examples)$")
_STATIC = re.compile(r"/(static|3rdparty|schemata)(/|$)")
_UWS_LIST = re.compile(r"/(async|dlasync|uws\.xml)$")
_UWS_JOB = re.compile(r"/(async|dlasync|uws\.xml)/[^/]+$")
_UWS_ACTION = re.compile(r"/(async|dlasync|uws\.xml)/[^/]+/.+$")
_SYNC = re.compile(r"/(sync|scs\.xml|siap2?\.xml|ssap\.xml|dlget|dlmeta)$")


def allowed_methods(path: str) -> tuple[str, ...]:
    """The HTTP methods the resource at ``path`` answers (besides 405).

    DALI sync resources take GET and POST (HEAD would run the query for
    nothing); UWS job lists GET and POST, jobs also DELETE; VOSI resources and
    static trees (HiPS, MOC, files) are read-only; web forms and anything else
    DaCHS serves (pages, login) GET, HEAD and POST.
    """
    if _UWS_JOB.search(path):
        return ("GET", "POST", "DELETE", "HEAD", "OPTIONS")
    if _UWS_ACTION.search(path) or _UWS_LIST.search(path):
        return ("GET", "POST", "HEAD", "OPTIONS")
    if _SYNC.search(path):
        return _DALI_SYNC
    if _VOSI.search(path) or _STATIC.search(path) or "/static/" in path:
        return _READ_ONLY
    return ("GET", "HEAD", "POST", "OPTIONS")


def _protocol(path: str) -> str | None:
    """Which :data:`SINGLE` rule applies to ``path`` (None: no check)."""
    if re.search(r"/(sync|async|dlasync)(/[^/]+(/[^/]+)?)?$", path):
        return "tap"
    if path.endswith("/scs.xml"):
        return "scs"
    if path.endswith("/siap.xml"):
        return "sia1"
    if re.search(r"/(siap2\.xml|ssap\.xml|dlget|dlmeta)$", path):
        return "dali"
    return None


def _path_problem(raw_path: bytes) -> str | None:
    """Why ``raw_path`` (undecoded) is refused, or None."""
    segments = raw_path.split(b"/")[1:]
    for index, segment in enumerate(segments):
        plain = unquote_to_bytes(segment)
        if segment == b"" and (0 < index < len(segments) - 1
                               or (index == 0 and len(segments) > 1)):
            return "empty path segments (//) are not allowed"
        if plain in (b".", b".."):
            return "relative path segments (. or ..) are not allowed"
        if b"\x00" in plain or b"/" in plain or b"\\" in plain:
            return "encoded slashes, backslashes or NUL bytes are not allowed in a path"
        try:
            plain.decode("utf-8")
        except UnicodeDecodeError:
            return "the path is not valid UTF-8"
    return None


def _text_problem(name: str, value: str | bytes) -> str | None:
    """Why a parameter value is refused, or None."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return f"the value of parameter {name} is not valid UTF-8"
    if "\x00" in value:
        return f"the value of parameter {name} contains a NUL byte"
    if any("\udc80" <= char <= "\udcff" for char in value):
        return f"the value of parameter {name} is not valid UTF-8"
    return None


def _parameters(request: Any) -> tuple[list[tuple[str, list]], list[tuple[str, bytes]]]:
    """(name, values) of text parameters, (name, content) of uploaded files."""
    texts: list[tuple[str, list]] = []
    files: list[tuple[str, bytes]] = []
    fields = request.fields
    file_names: set[str] = set()
    if fields is not None and hasattr(fields, "list") and fields.list:
        for item in fields.list:
            if getattr(item, "filename", None) is not None:
                file_names.add(item.name)
                value = item.value
                files.append((item.name, value if isinstance(value, bytes) else b""))
    for key, values in (request.args or {}).items():
        name = key.decode("utf-8", "surrogateescape") if isinstance(key, bytes) else key
        if name in file_names:
            continue
        texts.append((name, list(values)))
    return texts, files


def _upper_case_names(request: Any, names: frozenset[str]) -> None:
    """Spell the protocol's own parameters upper-case (DALI 1.1 §3.1: names are
    case-insensitive; DaCHS reads ``MAXREC`` only so spelt)."""
    args = request.args or {}
    for key in list(args):
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        if name.upper() in names and name != name.upper():
            upper = name.upper().encode("utf-8") if isinstance(key, bytes) else name.upper()
            args.setdefault(upper, []).extend(args.pop(key))


def credentials_problem(header: bytes | None) -> str | None:
    """Why an ``Authorization`` header is not usable basic credentials, or None."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return ("only HTTP basic authentication is accepted (the archive's users and "
                "passwords); this request's Authorization header uses another scheme")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "the basic credentials are not base64-encoded UTF-8 user:password"
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        return "the basic credentials name no user (they must be user:password)"
    from casuvo.dachs.access import checked_setting

    if checked_setting(user, password) is None:
        return "the user name or password does not check"
    return None


def request_problem(request: Any) -> tuple[int, str, str | None] | None:
    """(status, message, parameter) for a request to refuse, or None."""
    raw_path = request.uri.split(b"?", 1)[0]
    problem = _path_problem(raw_path)
    if problem:
        return 404, f"no such resource: {problem}", None
    path = raw_path.decode("utf-8")
    method = request.method.decode("ascii", "replace").upper()
    allowed = allowed_methods(path)
    if method not in allowed:
        return 405, f"this resource does not answer HTTP {method}; it allows: " \
            + ", ".join(allowed), None
    if problem := credentials_problem(request.getHeader(b"authorization")):
        return 401, problem, None
    texts, files = _parameters(request)
    for name, values in texts:
        if _text_problem("name", name.encode("utf-8", "surrogateescape")):
            return 400, "a parameter name is not valid UTF-8 or contains a NUL byte", None
        for value in values:
            if problem := _text_problem(name, value):
                return 400, problem, name
    protocol = _protocol(path)
    if protocol:
        counts: dict[str, int] = {}
        for name, values in texts:
            counts[name.upper()] = counts.get(name.upper(), 0) + len(values)
        for name in sorted(counts):
            if counts[name] > 1 and name in SINGLE[protocol]:
                return 400, f"parameter {name} was given {counts[name]} times;" \
                    " this service accepts it once", name
    if protocol:
        _upper_case_names(request, SINGLE[protocol])
    for name, content in files:
        head = content[:4096].lstrip()
        if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in head.upper():
            return 400, f"upload {name}: a DOCTYPE or entity declaration is not accepted" \
                " in uploaded documents (VOTable needs none)", name
    return None


def _answer_options(request: Any, allowed: tuple[str, ...]) -> None:
    """204 with ``Allow``; for an origin DaCHS's ``[web]corsOriginPat`` admits,
    the CORS pre-flight answer too (DaCHS's own CORS header only covers GET)."""
    from gavo.web import root

    request.setResponseCode(204)
    request.setHeader("allow", ", ".join(allowed))
    root._authorizeCORS(request)
    if request.responseHeaders.hasHeader("access-control-allow-origin"):
        request.setHeader("access-control-allow-methods", ", ".join(allowed))
        request.setHeader("access-control-allow-headers", "Authorization, Content-Type")
        request.setHeader("access-control-max-age", "3600")
    request.finish()


def _refuse(request: Any, status: int, message: str, name: str | None) -> None:
    from gavo import base
    from gavo.protocols import dali

    if status == 405:
        request.setHeader("allow", ", ".join(allowed_methods(
            request.uri.split(b"?", 1)[0].decode("utf-8"))))
    if status == 401:
        request.setHeader("www-authenticate",
                          f'Basic realm="{base.getConfig("web", "realm")}"')
    error = base.ValidationError(message, name or "request")
    path = request.uri.split(b"?", 1)[0].decode("utf-8", "replace")
    kind = error_document(path)
    if kind == "scs":
        _serve_scs_error(request, str(error), status)
    elif kind == "soda":
        _serve_text(request, status, f"{'NotFoundFault' if status == 404 else 'UsageError'}:"
                    f" {error}")
    elif kind == "html":
        _serve_html_error(request, status, str(error))
    else:
        dali.serveDALIError(request, error, httpStatus=status)


def error_document(path: str) -> str:
    """The kind of error document a client of ``path`` reads.

    ``scs`` (SCS 1.03's VOTable), ``soda`` (SODA 1.0's text/plain starting
    with the fault's name), ``dali`` (the DALI error VOTable: TAP, UWS, SIA,
    SSA, DataLink, VOSI and anything machine-read) or ``html`` (forms and
    pages, read by people in a browser).
    """
    if path.endswith("/scs.xml"):
        return "scs"
    if path.endswith("/dlget"):
        return "soda"
    if (_SYNC.search(path) or _VOSI.search(path) or _STATIC.search(path)
            or re.search(r"/(async|dlasync)(/|$)", path) or path.endswith("/uws.xml")):
        return "dali"
    return "html"


def error_body(kind: str, message: str) -> tuple[str, bytes]:
    """(media type, body) of a 413 written before DaCHS has a request to answer.

    The same documents as :func:`_refuse` writes, for a refusal sent straight
    to the connection (the body is not read, so DaCHS's renderers never run).
    """
    from html import escape
    from xml.sax.saxutils import escape as xml_escape

    if kind == "soda":
        return "text/plain;charset=utf-8", f"UsageError: {message}\n".encode()
    if kind == "html":
        return "text/html;charset=utf-8", (
            "<!DOCTYPE html><html><head><title>Request too large</title></head><body>"
            f"<h1>Request too large</h1><div class=\"errmsg\">{escape(message)}</div>"
            "</body></html>").encode()
    info = (f'<INFO ID="Error" name="Error" value="{xml_escape(message, {chr(34): "&quot;"})}"/>'
            if kind == "scs" else
            f'<INFO name="QUERY_STATUS" value="ERROR">{xml_escape(message)}</INFO>')
    return "application/x-votable+xml", (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f'<RESOURCE type="results">{info}</RESOURCE></VOTABLE>\n').encode()


def _serve_text(request: Any, status: int, text: str) -> None:
    request.setResponseCode(status)
    request.setHeader("content-type", "text/plain;charset=utf-8")
    request.write(text.encode("utf-8"))
    request.finish()


def _serve_html_error(request: Any, status: int, message: str) -> None:
    """A small HTML page with the message where DaCHS's pages put theirs."""
    from html import escape

    title = "Not found" if status == 404 else "Bad request"
    request.setResponseCode(status)
    request.setHeader("content-type", "text/html;charset=utf-8")
    request.write(
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
        f"<h1>{title}</h1><div class=\"errmsg\">{escape(message)}</div>"
        "</body></html>".encode())
    request.finish()


def _serve_scs_error(request: Any, message: str, status: int) -> None:
    """SCS 1.03's error document (an INFO named Error), as DaCHS's SCS writes it."""
    from xml.sax.saxutils import quoteattr

    request.setResponseCode(status)
    request.setHeader("content-type", "application/x-votable+xml")
    request.write(
        "<?xml version='1.0' encoding='utf-8'?>\n"
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE>'
        f'<INFO ID="Error" name="Error" value={quoteattr(message)}></INFO>'
        "</RESOURCE></VOTABLE>")
    request.finish()


def _too_large(request: Any, length: int | None) -> str | None:
    """The refusal message if a declared body ``length`` exceeds DaCHS's upload limit."""
    from gavo import base

    if not length:
        return None
    try:
        path = request.channel._path.split(b"?")[0]
    except AttributeError:
        path = b""
    key = "maxSyncUploadSize" if path.endswith(b"/sync") else "maxUploadSize"
    limit = base.getConfig("web", key)
    if length > limit:
        return f"the request body of {length} bytes exceeds this service's limit" \
            f" of {limit} bytes ({key})"
    return None


#: bytes of a refused body taken in (and dropped) before the connection is cut
DISCARD_CAP = 64 * 1024 * 1024


class _Discard:
    """Where the body of a refused request goes: counted, dropped, cut off past a cap."""

    def __init__(self, transport: Any) -> None:
        self.transport, self.received = transport, 0

    def write(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > DISCARD_CAP:
            self.transport.loseConnection()

    def seek(self, *args: Any) -> None:
        pass

    def read(self, *args: Any) -> bytes:
        return b""

    def close(self) -> None:
        pass


def _drop_missing_script_parts() -> None:
    """Leave out of ``/static/js/jquery-gavo.js`` the parts Debian does not ship.

    DaCHS 2.7 concatenates jQuery UI 1.12 modules from Debian's
    ``libjs-jquery-ui``; 1.13 no longer has ``ui/jquery-1-7.js`` (a shim for
    jQuery 1.7, which Debian's jQuery 3 does not need), so every page that
    loads the script got a 500 for it and its forms lost their JavaScript.
    """
    import os

    from gavo.web import ifpages

    gavo_jquery = ifpages.GavoJquery
    gavo_jquery.PARTS = [
        part for part in gavo_jquery.PARTS
        if hasattr(part, "read") or os.path.exists(os.path.join(gavo_jquery.INSTALL_ROOT, part))]


def install() -> None:
    """Wrap DaCHS's request class (``gavo.web.common.Request``); idempotent."""
    global _installed
    if _installed:
        return
    _drop_missing_script_parts()
    from gavo.web import common

    process = common.Request.process
    got_length = common.Request.gotLength

    def guarded_process(self: Any) -> None:
        if self.fields is None:
            self.fields = self.args.pop(common._FSHACK_MAGIC.encode("ascii"), None)
        if getattr(self, "_casuvo_refused", False):
            return
        if self.method == b"OPTIONS":
            path = self.uri.split(b"?", 1)[0].decode("utf-8", "replace")
            if not _path_problem(self.uri.split(b"?", 1)[0]):
                _answer_options(self, allowed_methods(path))
                return
        refusal = request_problem(self)
        if refusal:
            _refuse(self, *refusal)
            return
        process(self)

    def limited_length(self: Any, length: int | None) -> None:
        got_length(self, length)
        message = _too_large(self, length)
        if message is None:
            return
        # Answer at once; what the client still sends is counted and dropped
        # (DaCHS's limiter keeps nothing past its limit), and the connection
        # is closed when it is complete or past DISCARD_CAP bytes.
        self._casuvo_refused = True
        self.content = _Discard(self.channel.transport)
        try:
            path = self.channel._path.split(b"?")[0].decode("utf-8", "replace")
        except AttributeError:
            path = ""
        content_type, body = error_body(error_document(path), message)
        self.channel.transport.write(
            b"HTTP/1.1 413 Request Entity Too Large\r\n"
            b"Content-Type: " + content_type.encode("ascii") + b"\r\n"
            b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n"
            b"Connection: close\r\n\r\n" + body)

    received = common.Request.requestReceived

    def received_unless_refused(self: Any, command: bytes, path: bytes,
                                version: bytes) -> None:
        if getattr(self, "_casuvo_refused", False):
            self.channel.transport.loseConnection()
        else:
            received(self, command, path, version)

    common.Request.process = guarded_process
    common.Request.requestReceived = received_unless_refused
    common.Request.gotLength = limited_length
    _installed = True
