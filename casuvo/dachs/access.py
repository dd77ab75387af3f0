# SPDX-License-Identifier: BSD-3-Clause
"""Whom a request acts for, told to PostgreSQL on every connection it uses.

The release rule itself is a row-level security policy in the database
(:mod:`casuvo.storage.access`); it reads the session setting
``casuvo.groups``.  This adjustment sets that setting from DaCHS's own users
and groups (``dc.users``/``dc.groups``, HTTP basic authentication — DaCHS's
mechanism, managed with ``dachs admin adduser``/``addtogroup``):

- every service run (``Service._runWithInputTable``: SCS, SIA 1 and 2, SSA,
  DataLink, SODA, product downloads and previews, forms, the ADQL form) acts
  for the groups of the request's credentials, checked against ``dc.users``,
  and so does DataLink's and SODA's dataset lookup, which DaCHS makes earlier,
  while adapting the core to the request (``DatalinkCore.adaptForRenderer``),
  SSA's second lookup of a result's product while it writes the answer, and
  the drawing of HTML pages (their render functions query while DaCHS writes);
  credentials that do not check answer 401 (DaCHS's ``Authenticate``), none
  act as anonymous;
- a TAP job (sync or async, in the server or in a ``taprun`` process) acts
  for the groups of its owner, whom DaCHS recorded from checked credentials
  when the job was created (``uws`` ``getAuthUser``);
- each connection handed out while a request acts for someone gets
  ``casuvo.groups`` set first, and committed at once, so a later rollback
  cannot bring back another request's value (:data:`dbreconnect.TAKE_HOOKS`);
  TAP's own query connection is set just before its query;
- outside a request (start-up, periodic jobs) connections act as anonymous.

The server processes start with ``PGOPTIONS=-c casuvo.groups=-``
(:func:`casuvo.storage.access.server_environment`), so a connection that none of this reaches
sees public rows only.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from casuvo.storage.access import ALL_GROUPS, ANONYMOUS, GUC, groups_setting

__all__ = ["acting_for", "checked_setting", "current_setting", "current_user", "install",
           "owner_setting", "request_setting"]

_state = threading.local()


def current_setting() -> str:
    """``casuvo.groups`` of the request this thread works for (anonymous if none)."""
    return getattr(_state, "setting", ANONYMOUS)


def current_user() -> str | None:
    """The checked user of the request this thread works for (None: anonymous)."""
    return getattr(_state, "user", None)


@contextlib.contextmanager
def acting_for(setting: str, user: str | None = None) -> Iterator[None]:
    """Run the block on behalf of ``setting`` (nested blocks restore the outer one).

    ``user`` is the checked user name, for pages that show a user their own
    things (:mod:`casuvo.dachs.mydata`); nested blocks without one keep the outer's.
    """
    previous = (getattr(_state, "setting", None), getattr(_state, "user", None))
    _state.setting = setting
    if user is not None:
        _state.user = user
    try:
        yield
    finally:
        _state.setting, _state.user = previous
        if previous[0] is None:
            del _state.setting


def _groups_of(user: str) -> set[str]:
    from gavo import base

    with base.getAdminConn() as conn:
        return {g for (g,) in conn.query(
            "SELECT groupname FROM dc.groups WHERE username = %(user)s", {"user": user})}


def request_setting(user: str | None, password: str | None) -> str:
    """``casuvo.groups`` for a request's basic-auth credentials.

    No user: anonymous.  A user whose password does not check: 401
    (``svcs.Authenticate``), not a silent anonymous answer, so that a client
    with a typo learns it at once.
    """
    if not user:
        return ANONYMOUS
    setting = checked_setting(user, password or "")
    if setting is None:
        from gavo import svcs

        raise svcs.Authenticate()
    return setting


#: seconds a checked user's groups are remembered (one request asks up to three
#: times: the request guard, the service run, the answer's writing)
CHECK_TTL_S = 10.0
_checked: dict[bytes, tuple[float, str | None]] = {}
_checked_lock = threading.Lock()


def checked_setting(user: str, password: str) -> str | None:
    """``casuvo.groups`` for a user whose password checks against DaCHS's users, or None.

    Remembered for :data:`CHECK_TTL_S` under a hash of the credentials: a
    changed password or group counts within seconds, and a request's several
    checks cost one query.
    """
    from gavo.protocols import creds
    from gavo.utils import AllEncompassingSet

    key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
    now = time.monotonic()
    with _checked_lock:
        hit = _checked.get(key)
    if hit is not None and now - hit[0] < CHECK_TTL_S:
        return hit[1]
    groups = creds.getGroupsForUser(user, password)
    if isinstance(groups, AllEncompassingSet):
        setting: str | None = ALL_GROUPS
    else:  # dc.users gives every user its like-named group: none = bad password
        setting = groups_setting(groups) if groups else None
    with _checked_lock:
        if len(_checked) > 1000:
            _checked.clear()
        _checked[key] = (now, setting)
    return setting


def owner_setting(owner: str | None) -> str:
    """``casuvo.groups`` for a UWS job's owner (checked when the job was made)."""
    if not owner:
        return ANONYMOUS
    if owner == "gavoadmin":
        return ALL_GROUPS
    return groups_setting(_groups_of(owner))


def _apply(conn: Any, autocommitted: bool = True) -> None:
    """Set ``casuvo.groups`` on ``conn`` for the current request, durably."""
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT set_config(%(name)s, %(value)s, false)",
                       {"name": GUC, "value": current_setting()})
    finally:
        cursor.close()
    if not autocommitted:
        conn.commit()


def _install_services() -> None:
    from gavo import svcs

    run = svcs.Service._runWithInputTable

    def run_acting(self: Any, core: Any, input_table: Any, query_meta: Any) -> Any:
        user = query_meta.get("user") or None
        setting = request_setting(user, query_meta.get("password"))
        with acting_for(setting, user):
            return run(self, core, input_table, query_meta)

    run_acting.casuvo_access = True  # type: ignore[attr-defined]
    svcs.Service._runWithInputTable = run_acting


def _install_datalink() -> None:
    """DataLink and SODA find their dataset while DaCHS adapts the core to the
    request (``DatalinkCore.adaptForRenderer``), before the service run: that
    lookup must act for the request's credentials too (and fail with 401 on
    bad ones), or a member's own proprietary dataset is "not found"."""
    from gavo.protocols import datalink

    adapt = datalink.DatalinkCore.adaptForRenderer

    def adapt_acting(self: Any, renderer: Any, query_meta: Any) -> Any:
        user = query_meta.get("user") or None
        setting = request_setting(user, query_meta.get("password"))
        with acting_for(setting, user):
            return adapt(self, renderer, query_meta)

    datalink.DatalinkCore.adaptForRenderer = adapt_acting


def _credentials(request: Any) -> tuple[str | None, str | None]:
    """(user, password) of a twisted request's basic authentication."""
    def text(value: Any) -> str | None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value or None

    return text(request.getUser()), text(request.getPassword())


def _install_ssa() -> None:
    """SSA's renderer looks up the first result row's product again while it
    writes the answer (``SSAPRenderer._formatOutput`` → ``ssap.getDatalinkCore``,
    for the SODA block), after the service run: that lookup acts for the
    request too, or a member's own proprietary spectrum is "not in the product
    table"."""
    from gavo.web import vodal

    format_output = vodal.SSAPRenderer._formatOutput

    def format_acting(self: Any, data: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        user, password = _credentials(request)
        with acting_for(request_setting(user, password), user):
            return format_output(self, data, request, *args, **kwargs)

    vodal.SSAPRenderer._formatOutput = format_acting


def _install_pages() -> None:
    """HTML pages draw parts of themselves while DaCHS writes them (the archive
    overview's counts, a template's render functions), after any service run:
    writing a page acts for the request too.  Twisted's flattener calls the
    render functions synchronously until one returns a Deferred; casuvo's do
    not, so the whole page is drawn inside the block."""
    from gavo.formal import nevowc
    from twisted.internet import defer

    render_document = nevowc.TemplatedPage.renderDocument

    def render_acting(self: Any, request: Any) -> Any:
        try:
            user, password = _credentials(request)
            with acting_for(request_setting(user, password), user):
                return render_document(self, request)
        except Exception:
            return defer.fail()  # DaCHS's error page (401 for bad credentials)

    nevowc.TemplatedPage.renderDocument = render_acting


def _install_tap() -> None:
    from gavo.protocols import adqlglue, taprunner

    get_table, run_query = taprunner.getQTableFromJob, adqlglue.runTAPQuery

    def get_table_acting(parameters: Any, job: Any, query_profile: Any, timeout: Any) -> Any:
        # A sync job runs inside the request's service run, which already acts
        # for the checked credentials; DaCHS records an owner only for some.
        owner = getattr(job, "owner", None)
        with acting_for(owner_setting(owner) if owner else current_setting()):
            return get_table(parameters, job, query_profile, timeout)

    def run_query_acting(query: Any, timeout: Any, connection: Any, *args: Any,
                         **kwargs: Any) -> Any:
        _apply(connection)
        return run_query(query, timeout, connection, *args, **kwargs)

    taprunner.getQTableFromJob = get_table_acting
    adqlglue.runTAPQuery = run_query_acting


def install() -> None:
    """Install the request hooks (idempotent)."""
    from gavo import svcs

    from casuvo.dachs import dbreconnect

    if getattr(svcs.Service._runWithInputTable, "casuvo_access", False):
        return
    _install_services()
    _install_datalink()
    _install_ssa()
    _install_pages()
    _install_tap()
    if _apply not in dbreconnect.TAKE_HOOKS:
        dbreconnect.TAKE_HOOKS.append(_apply)
