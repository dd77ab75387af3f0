# SPDX-License-Identifier: BSD-3-Clause
"""Every limit the services enforce, in one place.

The ADQL guard, the parameter checks, ``services/gavo.rc.template`` values
that casuvo renders, the VOSI capabilities and the limits page all read these
numbers, so what a client is told is what the server does.  No ``gavo``
import: tests and the command line read them too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ADQL", "BULK_CUTOUTS", "MAX_FORM_BODY", "TIMEOUTS", "AdqlLimits", "BulkCutoutLimits",
           "Timeouts"]


@dataclass(frozen=True)
class AdqlLimits:
    """Size and complexity of an ADQL query, checked before DaCHS parses it.

    DaCHS's ADQL parser (pyparsing, packrat) holds the GIL and a process-wide
    lock for the whole parse, and costs about 0.7–2 ms of CPU per token,
    linearly (a 300-token select list: 0.5–0.65 s; an IN list of 1,000
    items: 5 s; 20,000 items: minutes).  ``max_tokens`` therefore bounds the
    parse time; the other limits name the usual culprits precisely, and are
    set where the token limit would stop them anyway.  The largest query each
    limit allows parses (and is annotated and translated) in at most 0.9 s of
    CPU (the costliest shape, a 400-token select list; an IN list of 150
    items: 0.34 s; ``bench/adql_limits.py``), while the service's largest
    example has 113 tokens (0.09 s).  400 tokens leave room for the wide
    select lists and joins people write (250 refused some); the parse
    occupies one work process, never the one answering health and VOSI
    (:mod:`casuvo.dachs.front`).  Long position or identifier lists belong
    in a table upload.
    """

    max_length: int = 20_000
    """characters of the query text (comments and string literals included)"""
    max_tokens: int = 400
    """lexical tokens (identifiers, literals, operators, punctuation)"""
    max_depth: int = 16
    """nesting of parentheses (sub-queries, function calls, grouping); DaCHS's
    parser runs out of Python stack at about 24 nested sub-queries"""
    max_in_items: int = 150
    """items of one IN (...) list of values"""
    max_terms: int = 80
    """AND/OR terms of the whole query (one more than its AND and OR keywords)"""


#: the limits the TAP service and the ADQL form enforce
ADQL = AdqlLimits()

#: bytes of a URL-encoded (form) request body.  Larger ones cannot be valid
#: (an ADQL query is at most ``ADQL.max_length`` characters; tables are
#: uploaded as multipart files), and decoding one holds a server process for
#: about 0.4 s per MiB, so the front refuses them (413) before any server
#: sees them; the ADQL guard does not scan longer texts.
MAX_FORM_BODY = 1_048_576


@dataclass(frozen=True)
class Timeouts:
    """How long the database may work on one request, by request kind (seconds).

    PostgreSQL cancels the statement at the limit (``statement_timeout``, which
    includes planning); the client gets DaCHS's "Query timed out" usage error
    (TAP sync, SCS, SIA: HTTP 400) or the job goes to ERROR (TAP async).
    ``tap_sync_s``, ``async_default_s`` and ``web_sql_s`` are rendered into
    ``var/gavo.rc`` (:func:`casuvo.dachs.instance.render_gavo_rc`); the two maxima are caps
    DaCHS does not have, applied by :mod:`casuvo.dachs.timeouts`.
    """

    tap_sync_s: int = 20
    """TAP sync queries (``[async]defaultExecTimeSync``); longer work goes async"""
    async_default_s: int = 3600
    """TAP async jobs without EXECUTIONDURATION (``[async]defaultExecTime``)"""
    async_max_s: int = 14_400
    """TAP async jobs: the most a job's EXECUTIONDURATION can buy"""
    web_sql_s: int = 15
    """SCS, SIA, SODA/DataLink look-ups and form queries (``[web]sqlTimeout``)"""
    web_max_s: int = 60
    """the most a client's ``_TIMEOUT`` (the ADQL and other forms) can ask for"""


#: the statement timeouts of the services
TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class BulkCutoutLimits:
    """What one bulk cutout job (``cutouts/q/bulk/async``) may ask for.

    A job runs in a child process of the server at lower CPU priority, its
    cutouts on the Dask cluster, and at most ``[async]maxUserUWSRunningDefault``
    (DaCHS's default, 2) such jobs run at once; others wait QUEUED.  These
    bound what one job costs: the cutouts, their total area (on VIRCAM's
    0.34″ pixels 1 deg² is 112 Mpix, 450 MB of float32; a 1′ cutout is
    125 kB) and the upload it is planned from.
    """

    max_rows: int = 10_000
    """rows of the uploaded table of positions"""
    max_cutouts: int = 2_000
    """cutouts one job makes (positions × the images each falls on)"""
    max_size_deg: float = 0.25
    """full width of one cutout, degrees"""
    max_area_deg2: float = 1.0
    """sum of the cutouts' squared widths, square degrees"""


#: the limits of the bulk cutout jobs
BULK_CUTOUTS = BulkCutoutLimits()
