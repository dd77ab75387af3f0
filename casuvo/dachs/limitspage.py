# SPDX-License-Identifier: BSD-3-Clause
"""The data centre's limits page: what each service allows, for people and for scripts.

One document (:func:`limits_document`), read from the running server's
configuration (``services/gavo.rc.template`` rendered, DaCHS's defaults for
what it leaves out), the limits casuvo enforces itself
(:mod:`casuvo.dachs.limits`, every dataclass instance it exports, field by
field with its docstring, so a limit added there appears here with no
change) and the cone radius of :mod:`casuvo.dachs.params`.  It is served as
HTML by the ``limits`` service of ``resdir/about`` (``volatile`` renderer,
``services/templates/casuvo/limits.html``, through :func:`limits_body`) and
as JSON by the same service's ``custom`` renderer (:class:`JsonPage`); the
VOSI capabilities state the same numbers (TAPRegExt for TAP,
:mod:`casuvo.dachs.overflow` for SCS).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
from typing import Any

from twisted.web.template import Tag
from twisted.web.template import tags as T  # noqa: N812 -- DaCHS's and twisted's spelling

from casuvo.dachs import limits, params

__all__ = ["field_docs", "limits_body", "limits_document"]

#: the service's path under the server root (``resdir/about/q.rd``, service ``limits``)
SERVICE_PATH = "about/q/limits"


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstrings of a dataclass's fields (the string literal below each field).

    Python keeps no such docstrings at run time; they are read from the class's
    source, which is where :mod:`casuvo.dachs.limits` documents each limit.
    """
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for stmt, after in zip(body, [*body[1:], None], strict=True):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[stmt.target.id] = " ".join(after.value.value.split())
    return docs


def _item(value: Any, unit: str, description: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "description": description}


def _config(section: str, key: str) -> Any:
    from gavo import base

    return base.getConfig(section, key)


def _dataclass_groups() -> dict[str, dict[str, Any]]:
    """Every dataclass instance :mod:`casuvo.dachs.limits` exports, as a group."""
    groups: dict[str, dict[str, Any]] = {}
    for name in getattr(limits, "__all__", ()):
        obj = getattr(limits, name, None)
        if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            continue
        docs = field_docs(type(obj))
        doc = inspect.getdoc(type(obj)) or ""
        groups[name.lower()] = {
            "title": doc.splitlines()[0].rstrip(".") if doc else name,
            "description": doc,
            "limits": {f.name: _item(getattr(obj, f.name), "", docs.get(f.name, f.name))
                       for f in dataclasses.fields(obj)}}
    return groups


def limits_document() -> dict[str, Any]:
    """Every limit the services enforce: group -> {title, description, limits}.

    ``limits`` maps a key to ``{"value", "unit", "description"}``.  The values
    are those the running server reads, not copies.
    """
    dal_default, dal_hard = _config("ivoa", "dalDefaultLimit"), _config("ivoa", "dalHardLimit")
    sql_timeout = _config("web", "sqlTimeout")
    cone = params.MAX_CONE_RADIUS
    dal_maxrec = {
        "maxrec_hard": _item(dal_hard, "rows", "most rows returned, whatever MAXREC says;"
                             " a result cut there is flagged OVERFLOW"),
        "query_timeout": _item(sql_timeout, "s", "database time of one query")}
    groups: dict[str, dict[str, Any]] = {
        "tap": {
            "title": "TAP (ADQL), sync and async",
            "description": "Also in the TAP service's VOSI capabilities (TAPRegExt"
                           " outputLimit, uploadLimit, executionDuration, retentionPeriod).",
            "limits": {
                "maxrec_default": _item(_config("async", "defaultMAXREC"), "rows",
                                        "rows returned without MAXREC (and without a"
                                        " smaller TOP); a result cut is flagged OVERFLOW"),
                "maxrec_hard": _item(_config("async", "hardMAXREC"), "rows",
                                     "most rows returned, whatever MAXREC or TOP say"),
                "upload_sync": _item(_config("web", "maxSyncUploadSize"), "bytes",
                                     "largest request body (with its uploads) of a sync"
                                     " query; larger ones are refused with HTTP 413"),
                "upload_async": _item(_config("web", "maxUploadSize"), "bytes",
                                      "largest request body (with its uploads) of an async"
                                      " job (TAPRegExt uploadLimit)"),
                "execution_duration_sync": _item(_config("async", "defaultExecTimeSync"), "s",
                                                 "run time of a sync query"),
                "execution_duration_async": _item(_config("async", "defaultExecTime"), "s",
                                                  "run time of an async job (UWS"
                                                  " executionDuration)"),
                "retention_period": _item(_config("async", "defaultLifetime"), "s",
                                          "time an async job and its results are kept"
                                          " (UWS destruction)"),
                "max_running_jobs": _item(_config("async", "maxTAPRunning"), "jobs",
                                          "async jobs executing at once; later ones wait"
                                          " QUEUED"),
            }},
        "scs": {
            "title": "Simple Cone Search",
            "description": "Also in each cone search's VOSI capabilities (maxSR, maxRecords).",
            "limits": {
                "maxrec_default": _item(dal_default * 10, "rows", "rows returned without"
                                        " MAXREC; a result cut is flagged OVERFLOW"),
                **dal_maxrec,
                "max_radius": _item(cone, "deg", "largest SR; wider cones belong in TAP"),
            }},
        "sia": {
            "title": "Simple Image Access 2.0 and 1.0",
            "description": "Also in each SIA service's VOSI capabilities (maxRecords).",
            "limits": {
                "maxrec_default": _item(dal_default, "rows", "rows returned without MAXREC;"
                                        " a result cut is flagged OVERFLOW"),
                **dal_maxrec,
                "max_radius": _item(cone, "deg", "largest CIRCLE radius (SIA 2.0) and SIZE"
                                    " (SIA 1.0)"),
            }},
        "datalink": {
            "title": "DataLink",
            "description": "A request may name several IDs; they are answered whole.",
            "limits": {
                "maxrec_default": _item(_config("db", "defaultLimit"), "links",
                                        "links after which no further ID of the request is"
                                        " answered (flagged OVERFLOW)"),
                "maxrec_hard": _item(dal_hard, "links", "most links, whatever MAXREC says"),
            }},
    }
    return {**groups, **_dataclass_groups()}


# ---------------------------------------------------------------- HTML

def _value(item: dict[str, Any]) -> str:
    value = item["value"]
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return f"{text} {item['unit']}".strip()


def limits_body() -> Tag:
    """The page's body: one table per group, every value in a ``data-limit`` cell."""
    from gavo import base

    sections = []
    for key, group in limits_document().items():
        rows = [T.tr(**{"data-limit": f"{key}.{name}"})[
                    T.th[T.code[name]],
                    T.td(class_="value", **{"data-value": json.dumps(item["value"])})[
                        _value(item)],
                    T.td(class_="comment")[item["description"]]]
                for name, item in group["limits"].items()]
        sections.append(T.section(class_="panel", id=f"limits-{key}")[
            T.h2[group["title"]],
            T.p(class_="help")[group["description"]] if group["description"] else "",
            T.table(class_="keyvalue")[T.tbody[rows]]])
    json_url = base.makeSitePath(f"/{SERVICE_PATH}/custom")
    return T.transparent[
        T.p(class_="subtitle")[
            "What each service of this data centre allows. The same, for scripts: ",
            T.a(href=json_url, id="limits-json")["JSON"], "."],
        sections]


# ---------------------------------------------------------------- JSON

@functools.cache
def _json_page_class() -> type:
    from gavo.web import grend

    class JsonPage(grend.ServiceBasedPage):
        """The limits document as JSON (the limits service's ``custom`` renderer)."""

        name = "custom"

        @classmethod
        def isBrowseable(cls, service: Any) -> bool:  # noqa: N802 -- DaCHS's name
            return True

        def render(self, request: Any) -> bytes:
            request.setHeader("content-type", "application/json")
            return json.dumps(limits_document(), indent=2).encode() + b"\n"

    return JsonPage


def __getattr__(name: str) -> Any:
    """``JsonPage`` is built on first use, so that importing this module needs no server."""
    if name == "JsonPage":
        return _json_page_class()
    raise AttributeError(name)
