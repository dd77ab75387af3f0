# SPDX-License-Identifier: BSD-3-Clause
"""MAXREC as a hard row limit, and OVERFLOW exactly when a result was cut.

DALI: a service returns at most MAXREC rows and flags a truncated result with
``<INFO name="QUERY_STATUS" value="OVERFLOW"/>``.  DaCHS 2.7 gets this wrong
in three places, each mended here by a named function that :func:`install`
puts in place at server start (``casuvo.dachs.server``):

- :func:`exact_tap_overflow` — TAP (sync and async).  Without TOP, DaCHS
  fetches MAXREC rows and flags OVERFLOW whenever exactly MAXREC came back,
  also when nothing more matched (a cone of 134 stars with MAXREC=134 is
  "OVERFLOW"); with TOP > MAXREC it fetches and returns MAXREC+1 rows.  Now one
  row more than MAXREC is fetched, never returned, and its presence alone is
  the overflow; a TOP within MAXREC can never overflow.
- :func:`exact_datalink_overflow` — DataLink answers the IDs of a request
  whole and stops after the ID whose links reach MAXREC; DaCHS flags OVERFLOW
  when that happens on the *last* ID too, i.e. when nothing was left out.
  Now OVERFLOW means IDs were left out.
- :func:`capped_dal_maxrec` — SCS, SIA 1.0 and 2.0 took any MAXREC (no hard
  limit, although their capabilities advertise one); now MAXREC above the
  hard limit ``[ivoa]dalHardLimit`` is lowered to it, and a result cut there
  is flagged as any other.  :func:`truthful_scs_capability` makes the SCS
  capability state it and the largest cone radius served
  (:data:`casuvo.dachs.params.MAX_CONE_RADIUS`) instead of DaCHS's 180°.

TAP async queries run in ``gavo taprun`` child processes, which would not
have these adjustments: :func:`async_runner_with_adjustments` starts them
through ``python -m casuvo.dachs.server`` as the server itself is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["async_runner_with_adjustments", "capped_dal_maxrec", "dal_hard_limit",
           "exact_datalink_overflow", "exact_tap_overflow", "install",
           "truthful_scs_capability"]

#: attribute set on a TAP result's table definition when rows beyond MAXREC were cut
_CUT = "casuvoRowsCut"


def dal_hard_limit() -> int:
    """Most rows SCS, SIA 1.0 and SIA 2.0 return, whatever MAXREC says."""
    from gavo import base

    return int(base.getConfig("ivoa", "dalHardLimit"))


# ---------------------------------------------------------------- TAP

def _update_match_limits(tree: Any, maxrec: int | None, hard_limit: int | None) -> int:
    """Replacement of ``adqlglue._updateMatchLimits``: the row limit of an ADQL tree.

    Returns the *overflow limit*: the number of rows that, fetched, means the
    result was cut.  MAXREC (default ``[async]defaultMAXREC``) is capped at
    the hard limit (``[async]hardMAXREC``).  A TOP within MAXREC is what the
    user asked for and is never an overflow; otherwise the query fetches
    MAXREC + 1 rows and the last one, if it comes, is dropped
    (:func:`_cut_rows`) and flags the overflow.
    """
    from gavo import base

    tree.overflowLimit = None
    hard = base.getConfig("async", "hardMAXREC") if hard_limit is None else hard_limit
    limit = base.getConfig("async", "defaultMAXREC") if maxrec is None else maxrec
    limit = min(int(limit), int(hard))
    if tree.setLimit is not None and tree.setLimit <= limit:
        return limit + 1
    tree.setLimit = limit + 1
    return limit + 1


def _cut_rows(original: Any) -> Any:
    """``QueryTable.__iter__`` that yields at most overflowLimit - 1 rows.

    Tables without an overflow limit (everything but TAP results) pass
    unchanged.  When the overflow row comes, it is dropped, the table
    definition is marked (for the VOTable's OVERFLOW INFO) and the table gets
    DaCHS's ``_queryStatus`` OVERFLOW meta (for the other formats).
    """

    def __iter__(self: Any) -> Iterator[Any]:  # noqa: N807 -- the method it replaces
        limit = getattr(self.tableDef, "overflowLimit", None)
        if not limit:
            yield from original(self)
            return
        rows = original(self)
        try:
            for n, row in enumerate(rows):
                if n >= limit - 1:
                    setattr(self.tableDef, _CUT, True)
                    self.setMeta("_queryStatus", "OVERFLOW")
                    break
                yield row
        finally:
            rows.close()

    return __iter__


def _write_result_to(format: str, res: Any, out_file: Any) -> None:
    """``taprunner.writeResultTo`` whose OVERFLOW INFO follows :func:`_cut_rows`."""
    from gavo import formats, votable
    from gavo.formats import votablewrite
    from gavo.votable import tablewriter

    if not format.startswith("votable"):
        formats.formatData(format, res, out_file, acquireSamples=False)
        return
    table_def = res.getPrimaryTable().tableDef

    class CutOverflow(votable.OverflowElement):
        """OVERFLOW when rows were cut, not when a row count was reached."""

        def write(self, outputFile: Any) -> None:  # noqa: N803 -- DaCHS's signature
            if getattr(table_def, _CUT, False):
                tablewriter.write(self.overflowStan, outputFile, xmlDecl=False)

    encoding = {"votable": "binary", "votableb2": "binary2", "votabletd": "td"}.get(
        format, "td")
    overflow = CutOverflow(getattr(table_def, "overflowLimit", None),
                           votable.V.INFO(name="QUERY_STATUS", value="OVERFLOW"))
    ctx = votablewrite.VOTableContext(tablecoding=encoding, acquireSamples=False,
                                      overflowElement=overflow)
    votablewrite.writeAsVOTable(res, out_file, ctx)


def exact_tap_overflow() -> None:
    """TAP sync and async: at most MAXREC rows, OVERFLOW exactly when more matched."""
    from gavo.protocols import adqlglue, taprunner
    from gavo.rsc import qtable

    if getattr(adqlglue._updateMatchLimits, "casuvo", False):
        return
    _update_match_limits.casuvo = True  # type: ignore[attr-defined]
    adqlglue._updateMatchLimits = _update_match_limits
    qtable.QueryTable.__iter__ = _cut_rows(qtable.QueryTable.__iter__)
    taprunner.writeResultTo = _write_result_to
    adqlglue.query = _form_query(adqlglue.query)


def _form_query(original: Any) -> Any:
    """``adqlglue.query`` (the ADQL web form) that warns when :func:`_cut_rows` cut.

    DaCHS's own warning compares the row count with the overflow limit, which a
    cut result no longer reaches.
    """

    def query(*args: Any, **kwargs: Any) -> Any:
        table = original(*args, **kwargs)
        if getattr(table.tableDef, _CUT, False):
            table.addMeta("_warning", "The result was cut at the match limit: more rows"
                          " matched. Give a larger limit (TOP) to see them.")
        return table

    return query


def async_runner_with_adjustments() -> None:
    """Run TAP async jobs (``gavo taprun``) through ``python -m casuvo.dachs.server``."""
    from gavo.protocols import tap

    def get_command_line(self: Any, wjob: Any) -> tuple[str, list[str]]:
        return sys.executable, [sys.executable, "-m", "casuvo.dachs.server", "--ui", "stingy",
                                "taprun", "--", str(wjob.jobId)]

    tap.TAPTransitions.getCommandLine = get_command_line


# ---------------------------------------------------------------- DataLink

def exact_datalink_overflow() -> None:
    """DataLink (dlmeta): OVERFLOW only when IDs of the request were left out."""
    from gavo.protocols import datalink

    original = datalink.DatalinkCore.adaptForDescriptors
    if getattr(original, "casuvo", False):
        return

    def adapt_for_descriptors(self: Any, renderer: Any, descriptors: list[Any],
                              max_rec: int | None) -> Any:
        requested = len(descriptors)
        res = original(self, renderer, descriptors, max_rec)
        # DaCHS truncates ``descriptors`` in place when the links reach MAXREC
        if res.overflowed and len(res.descriptors) >= requested:
            res.overflowed = False
        return res

    adapt_for_descriptors.casuvo = True  # type: ignore[attr-defined]
    datalink.DatalinkCore.adaptForDescriptors = adapt_for_descriptors


# ---------------------------------------------------------------- SCS, SIA

def capped_dal_maxrec() -> None:
    """MAXREC of every non-TAP service query is at most ``[ivoa]dalHardLimit``.

    DaCHS fetches ``dbLimit + 1`` rows and flags OVERFLOW if the extra one
    comes (``standardcores._addQueryStatus``): a MAXREC lowered here is cut
    and flagged like any other.
    """
    from gavo import svcs

    original = svcs.QueryMeta._fillDbOptions
    if getattr(original, "casuvo", False):
        return

    def fill_db_options(self: Any, args: Any) -> None:
        original(self, args)
        hard = dal_hard_limit()
        if self["dbLimit"] and self["dbLimit"] > hard:
            self["dbLimit"] = hard

    fill_db_options.casuvo = True  # type: ignore[attr-defined]
    svcs.QueryMeta._fillDbOptions = fill_db_options


def truthful_scs_capability() -> None:
    """The SCS capability's maxSR and maxRecords are what the service does."""
    from gavo.registry import capabilities
    from gavo.registry.model import SCS

    from casuvo.dachs.params import MAX_CONE_RADIUS

    def make_capability(self: Any, publication: Any) -> Any:
        service = publication.service
        return capabilities.CapabilityMaker._makeCapability(self, publication)[
            SCS.maxSR[f"{MAX_CONE_RADIUS:g}"],
            SCS.maxRecords[str(dal_hard_limit())],
            SCS.verbosity["true"],
            SCS.testQuery[
                SCS.ra[service.getMeta("testQuery.ra", raiseOnFail=True)],
                SCS.dec[service.getMeta("testQuery.dec", raiseOnFail=True)],
                SCS.sr[service.getMeta("testQuery.sr", default="0.001")]]]

    capabilities.SCSCapabilityMaker._makeCapability = make_capability


def install() -> None:
    """Every adjustment of this module (idempotent)."""
    exact_tap_overflow()
    async_runner_with_adjustments()
    exact_datalink_overflow()
    capped_dal_maxrec()
    truthful_scs_capability()
